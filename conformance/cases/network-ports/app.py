import mvm

@mvm.app(
    name="web",
    network=mvm.network(
        mode="bridge",
        ports=[mvm.port(8080, host=18080), {"guest": 5353, "proto": "udp"}],
    ),
    entrypoint=mvm.entrypoint(command=["python", "-m", "http.server", "8080"], name="serve"),
)
def web() -> None:
    pass
