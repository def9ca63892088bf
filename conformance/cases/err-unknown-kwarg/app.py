import mvm

@mvm.app(
    name="typo",
    resources=mvm.resources(cpu_cores=1, memroy_mb=512),
)
def f() -> None:
    pass
