import mvm

def f() -> None:
    pass
