import mvm

@mvm.app(name="math", resources=mvm.resources(memory_mb=256 * 4))
def f() -> None:
    pass
