"""Runtime-SDK latencies through a real `mvmctl serve` (MVM_API_URL), for
benches/api.rs: create -> first commands.run("true") from the base
template's snapshot, commands.run p50, 100 MB each way. Prints JSON."""

import json
import os
import sys
import time

from mvm import Sandbox

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
out = {}

# The first create builds the image and saves its template snapshot.
t = time.monotonic()
Sandbox.create(template="python-3.13", timeout=600).kill()
out["first_create_s"] = time.monotonic() - t

create = []
for _ in range(n):
    t = time.monotonic()
    sb = Sandbox.create(template="python-3.13", timeout=600)
    sb.commands.run("true")
    create.append(time.monotonic() - t)
    sb.kill()
out["create_first_run_s"] = create

sb = Sandbox.create(template="python-3.13", timeout=600)
runs = []
for _ in range(50):
    t = time.monotonic()
    sb.commands.run("true")
    runs.append(time.monotonic() - t)
out["run_true_s"] = runs

blob = os.urandom(1 << 20) * 100
t = time.monotonic()
sb.files.write("/tmp/blob", blob)
out["write_100mb_s"] = time.monotonic() - t
t = time.monotonic()
back = sb.files.read("/tmp/blob", format="bytes")
out["read_100mb_s"] = time.monotonic() - t
assert back == blob
out["sandbox"] = sb.id
print(json.dumps(out))
