import mvm

# The public project's form: the key is sent as a bearer token, to OpenAI only.
@mvm.app(
    name="agent-tool",
    image=mvm.nix_packages(["python312", "uv"]),
    network=mvm.network(mode="deny", allow_https=["api.openai.com"]),
    env={
        "OPENAI_API_KEY": mvm.secret("openai-api-key", var="OPENAI_API_KEY", type="bearer", hosts=["api.openai.com"]),
    },
    entrypoint=mvm.entrypoint_function(module="tool", function="run", primary=True),
)
def run(prompt: str) -> str:
    return prompt
