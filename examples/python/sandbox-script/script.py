"""An imperative Sandbox script. In record mode (MVM_SDK_MODE=record) the
calls are recorded instead of run; `mvmctl compile --from-recording` turns
the recording into a workload:

    MVM_SDK_MODE=record MVM_SDK_OUT_PATH=/tmp/rec.json python3 script.py
    mvmctl compile --from-recording /tmp/rec.json --source-root . --out /tmp/sandbox-script

(run from this directory; a recording outside the script's directory is
bundled from there only when --source-root names it).
"""

from mvm import Sandbox

with Sandbox.create(
    template="python-3.13",
    env={"GREETING": "hello"},
    include=["serve.py"],
    resources={"cpu_cores": 1, "memory_mb": 256, "rootfs_size_mb": 512},
) as sb:
    sb.files.write("/app/config/name.txt", "ari\n")
    sb.commands.run(["python3", "-c", "print('setting up')"])
    sb.commands.start(["python3", "/app/serve.py"])
