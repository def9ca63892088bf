import mvm

@mvm.app(name="both", resources=mvm.resources(cpu_cores=2, cpu=2))
def f() -> None:
    pass
