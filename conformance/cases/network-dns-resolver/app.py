import mvm

@mvm.app(
    name="resolver",
    network=mvm.network(
        mode="bridge",
        egress=mvm.egress([mvm.host_port("db.example.com", 5432)]),
        dns=mvm.dns_resolver("10.0.0.53"),
    ),
)
def f() -> None:
    pass
