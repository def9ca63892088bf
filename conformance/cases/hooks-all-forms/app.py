import mvm

@mvm.app(
    name="hooks",
    before_build="echo build",
    before_start=["python", "/app/migrate.py"],
    after_start=[mvm.hook("test -f /tmp/ready"), ["true"], "echo started"],
    before_stop=mvm.hook(["sync"]),
)
def f() -> None:
    pass
