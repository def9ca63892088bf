import mvm

@mvm.app(
    name="fetcher",
    source=mvm.local_path("."),
    image=mvm.python_image(),
    network=mvm.network(
        mode="bridge",
        egress=mvm.egress([
            mvm.host_port("api.openai.com", 443),
        ]),
        dns=mvm.dns_system(),
    ),
)
def fetch(url: str) -> str:
    return url
