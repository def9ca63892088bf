import mvm

NAME = "hello"

@mvm.app(name=NAME)
def f() -> None:
    pass
