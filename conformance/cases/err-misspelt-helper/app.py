import mvm

@mvm.app(
    name="typo",
    image=mvm.pyhton_image(python="3.12"),
)
def f() -> None:
    pass
