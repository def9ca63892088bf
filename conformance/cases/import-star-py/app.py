from mvm import *

@app(
    name="hello-app",
    source=local_path("."),
    image=python_image(python="3.12"),
    resources=resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    entrypoint=entrypoint_function(
        module="app",
        function="greet",
        primary=True,
    ),
    env={
        "MODEL_PATH": literal("/data/model.pt"),
        "API_KEY": secret("api-key"),
    },
    before_start="export HELLO_BANNER='hi'",
    after_start=hook(["curl", "-fsS", "http://127.0.0.1:8080/health"]),
)
def greet(name: str) -> str:
    return f"hello {name}"
