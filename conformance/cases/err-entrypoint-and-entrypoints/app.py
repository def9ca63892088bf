import mvm

@mvm.app(
    name="both",
    entrypoint=mvm.entrypoint(command=["true"]),
    entrypoints=[mvm.entrypoint(command=["false"])],
)
def f() -> None:
    pass
