import mvm

# A bearer secret without hosts compiles, with W_SECRET_UNBOUND: the host adds
# it to requests to every egress grant.
@mvm.app(
    name="unbound",
    network=mvm.network(mode="deny", allow_https=["api.openai.com"]),
    env={"OPENAI_API_KEY": mvm.secret("openai-api-key", type="bearer")},
)
def f() -> None:
    pass
