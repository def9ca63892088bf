import mvm

@mvm.app(
    name="narrow",
    source=mvm.local_path("service", include=["**/*.py", "uv.lock"], exclude=["tests/**"]),
    entrypoint=mvm.entrypoint_function(module="service.main", function="handle", name="handler"),
)
def f() -> None:
    pass
