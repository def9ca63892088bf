import mvm

@mvm.app(name="broken"
def f() -> None:
    pass
