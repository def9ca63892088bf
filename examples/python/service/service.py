"""A command-entrypoint service with a hook for every lifecycle phase.

The service appends to /run/mvm-events.log so a test (or a curious user,
via `mvmctl exec service -- cat /run/mvm-events.log`) can see the order in
which hooks and service ran. It declares nothing itself: the declaration
is in app.py, and this file is what the command entrypoint runs.
"""

import os
import time

EVENTS = "/run/mvm-events.log"


def main() -> None:
    with open(EVENTS, "a") as f:
        f.write(f"service-start banner={os.environ.get('BANNER', '')}\n")
    # Readiness marker polled by the after_start hook.
    open("/run/service.ready", "w").close()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
