import mvm

@mvm.app(name="img", image=mvm.python_image("3.11", ["ffmpeg", "uv"]))
def f() -> None:
    pass
