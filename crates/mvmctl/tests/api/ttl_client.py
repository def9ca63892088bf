"""Creates a sandbox with a short TTL, prints its id, then waits to be
killed (tests/api_vm.rs kills it with SIGKILL)."""

import sys
import time

from mvm import Sandbox

sb = Sandbox.create(template=sys.argv[1], timeout=float(sys.argv[2]))
print(sb.id, flush=True)
time.sleep(3600)
