import mvm


@mvm.app(
    name="web",
    source=mvm.local_path(".", include=["server.py"]),
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256),
    # No egress at all; guest port 8000 is published on the host's
    # 127.0.0.1 at a free port chosen at `up` (see `mvmctl port web`).
    network=mvm.network(mode="bridge", ports=[mvm.port(8000)]),
    entrypoint=mvm.entrypoint(command=["python3", "/app/server.py"], primary=True),
    # Readiness: `up` returns once the server answers inside the guest.
    after_start=[
        "python3",
        "-c",
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)",
    ],
)
def web() -> None:
    pass
