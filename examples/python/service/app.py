import mvm


@mvm.app(
    name="service",
    source=mvm.local_path(".", include=["service.py"]),
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256),
    env={"BANNER": "hi"},
    entrypoint=mvm.entrypoint(command=["python3", "/app/service.py"], primary=True),
    # Runs once, inside the builder microVM; its effect is baked into the image.
    before_build="echo built-at-build-time > /etc/service-build-marker",
    # Run at every boot, before the service starts.
    before_start=[
        "echo before_start banner=$BANNER >> /run/mvm-events.log",
        ["sh", "-c", "cat /etc/service-build-marker >> /run/mvm-events.log"],
    ],
    # Readiness probe: polled until it exits 0.
    after_start="test -e /run/service.ready && echo after_start-ok >> /run/mvm-events.log",
    # Best effort at shutdown; its output is shown by `mvmctl down`.
    before_stop="echo before_stop; cat /run/mvm-events.log",
)
def service() -> None:
    pass
