import mvm

@mvm.app(
    name="secrets",
    env={"OPENAI_API_KEY": mvm.secret("openai-api-key", var="OPENAI_KEY")},
)
def f() -> None:
    pass
