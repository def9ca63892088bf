import mvm
mvm.workload(id="hello-python")
@mvm.app(
    name="hello",
    source=mvm.local_path(".", include=["src/**", "pyproject.toml", "uv.lock"]),
    image=mvm.python_image(python="3.12", packages=["uv"]),
    resources=mvm.resources(cpu_cores=1, memory_mb=512, rootfs_size_mb=1024),
    dependencies=mvm.python_deps(lockfile="uv.lock", tool="uv"),
    network=mvm.network(mode="none"),
    entrypoint=mvm.entrypoint_function(
        module="src.tool",
        function="run",
        primary=True,
    ),
)
def run(prompt: str) -> str:
    return prompt.upper()
