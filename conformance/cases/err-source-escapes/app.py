import mvm

@mvm.app(name="escape", source=mvm.local_path("../.."))
def f() -> None:
    pass
