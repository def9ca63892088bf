import mvm

@mvm.app(
    name="img",
    image=mvm.oci_image("debian:12-slim", digest="sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
)
def f() -> None:
    pass
