import mvm

@mvm.app(name="deps", dependencies=mvm.python_deps(lockfile="requirements.lock", tool="pip-tools"))
def f() -> None:
    pass
