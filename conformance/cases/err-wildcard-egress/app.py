import mvm

@mvm.app(
    name="wild",
    network=mvm.network(mode="bridge", egress=mvm.egress([mvm.host_port("*.openai.com", 443)])),
)
def f() -> None:
    pass
