import mvm
@mvm.app(
    name="service",
    source=mvm.local_path("."),
    image=mvm.python_image(packages=["uv"]),
    resources=mvm.resources(cpu_cores=1, memory_mb=512, rootfs_size_mb=1024),
    network=mvm.network(mode="none"),
    entrypoint=mvm.entrypoint(command=["python", "/app/server.py"]),
    before_build=mvm.hook(["uv", "sync", "--frozen"]),
    before_start=mvm.hook("python /app/migrate.py"),
    after_start=mvm.hook(["python", "/app/healthcheck.py"]),
)
def service() -> None:
    pass
