import mvm

@mvm.app(name="comp", image=mvm.nix_packages([p for p in ["uv", "git"]]))
def f() -> None:
    pass
