import mvm as m

m.workload(id="pair-full")

@m.app(
    name="pair",
    source=m.local_path(".", include=["app.*", "lib/**"], exclude=["lib/tests/**"]),
    image=m.nix_packages(["python312", "nodejs_22", "uv"]),
    resources=m.resources(cpu_cores=2, memory_mb=1024, rootfs_size_mb=2048),
    dependencies=m.no_deps(),
    network=m.network(
        mode="bridge",
        ports=[m.port(8080)],
        egress=m.egress([m.host_port("api.example.com", 443)]),
        dns=m.dns_system(),
    ),
    env={"MODE": "prod", "TOKEN": m.secret("pair-token", var="TOKEN"), "LEVEL": m.literal("debug")},
    entrypoint=m.entrypoint(command=["/app/run.sh"], name="run"),
    before_build=["make", "build"],
    before_start=[m.hook("echo boot"), ["true"]],
    after_start=m.hook(["test", "-f", "/tmp/ready"]),
    before_stop="sync",
    addons=[m.addon(name="extra", path="addons/extra", before_start="echo addon")],
    threat_tier="untrusted",
)
def pair() -> None:
    pass
