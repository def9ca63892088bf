import mvm

@mvm.app(
    name="secrets",
    network=mvm.network(mode="deny", allow_https=["api.openai.com"]),
    env={"OPENAI_API_KEY": mvm.secret("openai-api-key", "OPENAI_API_KEY", "bearer")},
)
def f() -> None:
    pass
