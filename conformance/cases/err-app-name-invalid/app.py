import mvm

@mvm.app(name="Hello_World")
def f() -> None:
    pass
