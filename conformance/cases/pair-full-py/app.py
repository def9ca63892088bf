import mvm

mvm.workload(id="pair-full")

@mvm.app(
    name="pair",
    source=mvm.local_path(".", include=["app.*", "lib/**"], exclude=["lib/tests/**"]),
    image=mvm.nix_packages(["python312", "nodejs_22", "uv"]),
    resources=mvm.resources(cpu_cores=2, memory_mb=1024, rootfs_size_mb=2048),
    dependencies=mvm.no_deps(),
    network=mvm.network(
        mode="bridge",
        ports=[mvm.port(8080)],
        egress=mvm.egress([mvm.host_port("api.example.com", 443)]),
        dns=mvm.dns_system(),
    ),
    env={"MODE": "prod", "TOKEN": mvm.secret("pair-token", var="TOKEN"), "LEVEL": mvm.literal("debug")},
    entrypoint=mvm.entrypoint(command=["/app/run.sh"], name="run"),
    before_build=["make", "build"],
    before_start=[mvm.hook("echo boot"), ["true"]],
    after_start=mvm.hook(["test", "-f", "/tmp/ready"]),
    before_stop="sync",
    addons=[mvm.addon(name="extra", path="addons/extra", before_start="echo addon")],
    threat_tier="untrusted",
)
def pair() -> None:
    pass
