import mvm

@mvm.app(
    name="secrets",
    network=mvm.network(mode="deny", allow_https=["api.openai.com"]),
    env={"OPENAI_API_KEY": mvm.secret("openai-api-key", type="bearer", hosts=["api.openai.com", "api.anthropic.com"])},
)
def f() -> None:
    pass
