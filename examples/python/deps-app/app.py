"""A function whose dependency comes from uv.lock, installed in the builder VM."""

import mvm


@mvm.app(
    name="deps-app",
    source=mvm.local_path(".", include=["app.py", "pyproject.toml", "uv.lock"]),
    image=mvm.python_image(python="3.13", packages=["uv"]),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    dependencies=mvm.python_deps(lockfile="uv.lock", tool="uv"),
    entrypoint=mvm.entrypoint_function(module="app", function="size", primary=True),
)
def size(n: int) -> str:
    # Imported inside the function so the declaration file itself needs only mvm.
    import humanize

    return humanize.naturalsize(n)
