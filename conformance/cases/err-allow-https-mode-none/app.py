import mvm

@mvm.app(name="closed", network=mvm.network(mode="none", allow_https=["example.com"]))
def f() -> None:
    pass
