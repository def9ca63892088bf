from mvm import (
    addon,
    app,
    dns_system,
    egress,
    entrypoint,
    hook,
    host_port,
    literal,
    local_path as lp,
    network,
    nix_packages,
    no_deps,
    port,
    resources,
    secret as secret_ref,
    workload,
)

workload(id="pair-full")

@app(
    name="pair",
    source=lp(".", include=["app.*", "lib/**"], exclude=["lib/tests/**"]),
    image=nix_packages(["python312", "nodejs_22", "uv"]),
    resources=resources(cpu_cores=2, memory_mb=1024, rootfs_size_mb=2048),
    dependencies=no_deps(),
    network=network(
        mode="bridge",
        ports=[port(8080)],
        egress=egress([host_port("api.example.com", 443)]),
        dns=dns_system(),
    ),
    env={"MODE": "prod", "TOKEN": secret_ref("pair-token", var="TOKEN"), "LEVEL": literal("debug")},
    entrypoint=entrypoint(command=["/app/run.sh"], name="run"),
    before_build=["make", "build"],
    before_start=[hook("echo boot"), ["true"]],
    after_start=hook(["test", "-f", "/tmp/ready"]),
    before_stop="sync",
    addons=[addon(name="extra", path="addons/extra", before_start="echo addon")],
    threat_tier="untrusted",
)
def pair() -> None:
    pass
