import mvm

mvm.workload(id="addon-app")


@mvm.app(
    name="addon-app",
    source=mvm.local_path(".", include=["app.py"]),
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    network=mvm.network(mode="none"),
    addons=[
        # The addon's directory is bundled whole at /app/.mvm/addons/stamp/,
        # and its hooks run before the app's of the same phase.
        mvm.addon(
            name="stamp",
            path="addons/stamp",
            before_start=mvm.hook(["sh", "/app/.mvm/addons/stamp/stamp.sh"]),
        ),
    ],
    # Fails the boot unless the addon's hook ran first.
    before_start="test -s /run/addon-stamp",
    entrypoint=mvm.entrypoint_function(module="app", function="stamp", primary=True),
)
def stamp() -> str:
    with open("/run/addon-stamp") as f:
        return f.read().strip()
