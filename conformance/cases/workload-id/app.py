import mvm

mvm.workload(id="team-tools")

@mvm.app(name="summarise")
def summarise(text: str) -> str:
    return text[:10]
