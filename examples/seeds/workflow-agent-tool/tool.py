import mvm
@mvm.app(
    name="agent-tool",
    source=mvm.local_path("."),
    image=mvm.nix_packages(["python312", "uv"]),
    resources=mvm.resources(cpu_cores=1, memory_mb=512),
    network=mvm.network(mode="deny"),
    env={
        "MODEL_PATH": mvm.literal("/data/model.bin"),
        "API_KEY": mvm.secret("agent-api-key"),
    },
    entrypoint=mvm.entrypoint_function(
        module="tool",
        function="run",
        primary=True,
    ),
)
def run(prompt: str) -> str:
    return prompt.upper()
