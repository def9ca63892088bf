import mvm

# Both set Authorization on api.example.com: the host could not tell which to send.
@mvm.app(
    name="secrets",
    network=mvm.network(mode="deny", allow_https=["api.example.com"]),
    env={
        "A_TOKEN": mvm.secret("a-token", type="bearer", hosts=["api.example.com"]),
        "B_LOGIN": mvm.secret("b-login", type="basic", hosts=["api.example.com"]),
    },
)
def f() -> None:
    pass
