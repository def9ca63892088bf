import mvm

@mvm.app(name="img", image=mvm.oci_image("debian:12-slim"))
def f() -> None:
    pass
