import mvm

@mvm.app(name="one")
def one() -> None:
    pass

@mvm.app(name="two")
def two() -> None:
    pass
