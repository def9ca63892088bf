import mvm

@mvm.app(name="img", image=mvm.node_image(node="20", packages=["git"]))
def f() -> None:
    pass
