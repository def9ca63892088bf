import mvm

@mvm.app(name=b"bytes")
def f() -> None:
    pass
