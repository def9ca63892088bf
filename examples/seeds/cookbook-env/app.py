import mvm

@mvm.app(
    name="chat",
    source=mvm.local_path("."),
    env={
        "MODEL": mvm.literal("gpt-4.1-mini"),
        "OPENAI_API_KEY": mvm.secret("openai-api-key", var="OPENAI_API_KEY"),
    },
)
def chat(prompt: str) -> str:
    return prompt
