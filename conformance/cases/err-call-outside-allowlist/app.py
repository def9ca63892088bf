import os
import mvm

@mvm.app(name="env", env={"HOME_DIR": os.getenv("HOME")})
def f() -> None:
    pass
