import mvm

@mvm.app(
    name="secrets",
    network=mvm.network(mode="deny", allow_https=["api.search.example"]),
    env={"SEARCH_KEY": mvm.secret("search-key", type="header", hosts=["api.search.example"])},
)
def f() -> None:
    pass
