import mvm

@mvm.app(
    name="secrets",
    network=mvm.network(mode="deny", allow_https=["api.openai.com"]),
    env={"OPENAI_API_KEY": mvm.secret("openai-api-key", type="bearer", header="X-Api-Key", hosts=["api.openai.com"])},
)
def f() -> None:
    pass
