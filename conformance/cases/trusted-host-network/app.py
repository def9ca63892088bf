import mvm

@mvm.app(name="hostnet", network=mvm.network(mode="host"), threat_tier="trusted")
def f() -> None:
    pass
