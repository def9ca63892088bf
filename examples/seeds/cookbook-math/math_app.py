import mvm
@mvm.app(
    name="math",
    source=mvm.local_path(".", include=["mathsvc.py"]),
    image=mvm.python_image(),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    network=mvm.network(mode="none"),
    dependencies=mvm.no_deps(),
    entrypoints=[
        mvm.entrypoint_function(module="mathsvc", function="add", primary=True),
        mvm.entrypoint_function(module="mathsvc", function="mul"),
    ],
)
def math() -> None:
    pass
