import mvm

@mvm.app()
def greet_user(name: str) -> str:
    return "hi " + name
