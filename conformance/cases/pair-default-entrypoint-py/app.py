import mvm

@mvm.app(
    name="defaults",
    image=mvm.node_image(node="22"),
    network=mvm.network(mode="deny", allow_https=["registry.npmjs.org"]),
)
def handler(event: dict) -> dict:
    return event
