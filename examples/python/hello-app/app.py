import mvm

mvm.workload(id="hello-app")


@mvm.app(
    name="hello-app",
    source=mvm.local_path(".", include=["app.py"]),
    # Python 3.13 comes from Debian trixie; see docs/images.md for what the
    # image builder can provide on this host.
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    network=mvm.network(mode="none"),
    env={
        "GREETING": mvm.literal("hello"),
    },
    entrypoint=mvm.entrypoint_function(module="app", function="greet", primary=True),
)
def greet(name: str) -> str:
    import os

    return f"{os.environ.get('GREETING', 'hello')} {name}"
