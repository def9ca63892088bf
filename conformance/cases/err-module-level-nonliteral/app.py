import os
import mvm

mvm.workload(id=os.environ["WORKLOAD"])

@mvm.app(name="env-driven")
def f() -> None:
    pass
