"""An imperative Sandbox script. In record mode (MVM_SDK_MODE=record) the
calls are recorded instead of run; `mvmctl compile --from-recording` turns
the recording into a workload:

    MVM_SDK_MODE=record MVM_SDK_OUT_PATH=/tmp/rec.json python3 script.py
    mvmctl compile --from-recording /tmp/rec.json --source-root . --out /tmp/sandbox-script

(run from this directory; a recording outside the script's directory is
bundled from there only when --source-root names it).

Without MVM_SDK_MODE the same script runs live (docs/runtime-sdk.md): each
call happens in a real sandbox, and the script prints what the compiled
workload prints to its console (`mvmctl logs`).
"""

from mvm import Sandbox

with Sandbox.create(
    template="python-3.13",
    env={"GREETING": "hello"},
    include=["serve.py"],
    resources={"cpu_cores": 1, "memory_mb": 256, "rootfs_size_mb": 512},
) as sb:
    sb.files.write("/app/config/name.txt", "ari\n")
    setup = sb.commands.run(["python3", "-c", "print('setting up')"])
    server = sb.commands.start(["python3", "/app/serve.py"])
    if not server.recorded:
        print(setup.stdout, end="")
        # The server writes its greeting to a file once it has printed it.
        ready = sb.commands.run("until [ -s /tmp/greeting ]; do sleep 0.1; done; cat /tmp/greeting")
        print(ready.stdout, end="")
