import mvm

@mvm.app(
    name="huge",
    resources=mvm.resources(cpu_cores=1, memory_mb=1000000),
)
def f() -> None:
    pass
