import base64
import json
import os
import subprocess
import sys
import textwrap

import pytest

import mvm

SCRIPT = """
import mvm
from mvm import Sandbox

with Sandbox.create(
    template="python-3.13",
    env={"MODE": "demo", "API_KEY": mvm.secret("api-key", type="header", header="X-Api-Key", hosts=["api.example.com"])},
    include=["data/**"],
    resources=mvm.resources(memory_mb=512),
    network=mvm.network(mode="deny", allow_https=["api.example.com"]),
) as sb:
    sb.files.write("/app/hello.txt", "hi\\n")
    sb.commands.run(["python", "-c", "print(1)"])
    sb.commands.start("python -m http.server 8000")

other = Sandbox.create(template="minimal")
other.kill()
other.kill()
"""


def _record(tmp_path, script, **env):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    out = tmp_path / "rec.json"
    full_env = dict(os.environ, MVM_SDK_MODE="record", MVM_SDK_OUT_PATH=str(out))
    full_env.update(env)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, env=full_env, cwd=tmp_path)
    return proc, out


def test_record_mode_writes_the_recording_at_exit(tmp_path):
    proc, out = _record(tmp_path, SCRIPT)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(out.read_bytes())
    assert rec["recording_version"] == 1
    assert rec["sdk"] == {"language": "python", "version": mvm.__version__}
    assert rec["source_root"] == str(tmp_path)
    first, second = rec["sandboxes"]
    assert first["template"] == "python-3.13"
    assert first["env"] == {
        "MODE": {"kind": "literal", "value": "demo"},
        "API_KEY": {
            "kind": "secret_ref", "name": "api-key", "type": "header", "header": "X-Api-Key", "hosts": ["api.example.com"],
        },
    }  # fmt: skip
    assert first["include"] == ["data/**"]
    assert first["resources"] == {"cpu_cores": 1, "memory_mb": 512, "rootfs_size_mb": 512}
    assert first["network"]["mode"] == "bridge"
    assert first["network"]["egress"]["allowlist"] == [{"host": "api.example.com", "port": 443}]
    assert first["operations"] == [
        {"op": "write", "path": "/app/hello.txt", "data_b64": base64.b64encode(b"hi\n").decode()},
        {"op": "run", "cmd": ["python", "-c", "print(1)"], "background": False},
        {"op": "run", "cmd": "python -m http.server 8000", "background": True},
        {"op": "kill"},
    ]
    assert second == {
        "template": "minimal",
        "env": {},
        "include": [],
        "resources": {"cpu_cores": 1, "memory_mb": 256, "rootfs_size_mb": 512},
        "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
        "operations": [{"op": "kill"}],
    }


def test_record_mode_rejects_bad_calls(tmp_path):
    proc, out = _record(tmp_path, "from mvm import Sandbox\nSandbox.create(template='ubuntu')\n")
    assert proc.returncode == 1
    assert b"template must be one of python-3.13" in proc.stderr
    proc, _ = _record(
        tmp_path,
        "from mvm import Sandbox\nsb = Sandbox.create()\nsb.kill()\nsb.commands.run('ls')\n",
    )
    assert b"was killed" in proc.stderr
    proc, _ = _record(tmp_path, "from mvm import Sandbox\nSandbox.create().files.write('rel.txt', 'x')\n")
    assert b"absolute guest path" in proc.stderr


def test_record_mode_needs_an_out_path(tmp_path):
    proc, _ = _record(tmp_path, "from mvm import Sandbox\nSandbox.create()\n", MVM_SDK_OUT_PATH="")
    assert b"MVM_SDK_OUT_PATH" in proc.stderr


def test_live_mode_without_a_server_or_mvmctl_says_what_is_missing(monkeypatch, tmp_path):
    # Live is the default; with no server answering and no mvmctl to
    # start one, create fails naming the binary and both ways forward.
    monkeypatch.delenv("MVM_SDK_MODE", raising=False)
    monkeypatch.delenv("MVM_API_URL", raising=False)
    monkeypatch.setenv("MVM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MVM_MVMCTL", str(tmp_path / "no-such-mvmctl"))
    with pytest.raises(mvm.SandboxError, match="no-such-mvmctl") as e:
        mvm.Sandbox.create()
    assert "MVM_SDK_MODE=record" in str(e.value)
    assert "mvmctl doctor" in str(e.value)
