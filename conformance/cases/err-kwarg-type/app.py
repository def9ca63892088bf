import mvm

@mvm.app(name="typed", resources=mvm.resources(memory_mb="512"))
def f() -> None:
    pass
