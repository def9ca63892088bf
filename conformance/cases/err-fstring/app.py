import mvm

VERSION = "3.12"

@mvm.app(name="fstr", image=mvm.python_image(python=f"{VERSION}"))
def f() -> None:
    pass
