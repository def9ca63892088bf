import mvm

@mvm.app(
    name="sorted",
    network=mvm.network(
        mode="bridge",
        egress=mvm.egress([
            mvm.host_port("pypi.org", 443),
            mvm.host_port("api.example.com", 8443),
            mvm.host_port("api.example.com", 443),
            mvm.host_port("pypi.org", 443),
        ]),
        allow_https=["files.pythonhosted.org", "api.example.com"],
    ),
)
def f() -> None:
    pass
