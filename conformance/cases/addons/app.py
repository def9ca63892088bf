import mvm

@mvm.app(
    name="with-addons",
    addons=[
        mvm.addon(name="tools", path="addons/tools", before_build=["apt-get", "--version"]),
        mvm.addon("metrics", "addons/metrics", after_start="test -S /run/metrics.sock"),
    ],
    before_build="echo app",
)
def f() -> None:
    pass
