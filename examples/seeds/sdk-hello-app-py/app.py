import mvm

@mvm.app(
    name="hello-app",
    source=mvm.local_path("."),
    image=mvm.python_image(python="3.12"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    entrypoint=mvm.entrypoint_function(
        module="app",
        function="greet",
        primary=True,
    ),
    env={
        "MODEL_PATH": mvm.literal("/data/model.pt"),
        "API_KEY": mvm.secret("api-key"),
    },
    before_start="export HELLO_BANNER='hi'",
    after_start=mvm.hook(["curl", "-fsS", "http://127.0.0.1:8080/health"]),
)
def greet(name: str) -> str:
    return f"hello {name}"
