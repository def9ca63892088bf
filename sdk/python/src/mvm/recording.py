"""Record mode: the recording written for ``mvmctl compile --from-recording``.

The format (``recording_version`` 1) is specified in docs/recording.md; this
module is its Python writer. Values are checked here, when the script makes
the call, so a bad template or env name fails at the line that wrote it.
"""

from __future__ import annotations

import atexit
import os
import sys

from mvm import _spec
from mvm.canonical import canonical_json
from mvm.errors import SandboxError
from mvm.helpers import Helper, network as _network_helper
from mvm.validate import full_match

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

RECORDING_VERSION = 1
TEMPLATES = ("python-3.13", "python-3.11", "node-22", "node-20", "minimal")


class Session:
    """Everything recorded in this process; written once at exit."""

    def __init__(self, out_path: str, source_root: str) -> None:
        self.out_path = out_path
        self.source_root = source_root
        self.sandboxes: List[Dict[str, Any]] = []

    def document(self) -> Dict[str, Any]:
        from mvm import __version__

        return {
            "recording_version": RECORDING_VERSION,
            "sdk": {"language": "python", "version": __version__},
            "source_root": self.source_root,
            "sandboxes": self.sandboxes,
        }

    def write(self) -> None:
        with open(self.out_path, "wb") as f:
            f.write(canonical_json(self.document()).encode("utf-8"))


_session: Optional[Session] = None


def _script_dir() -> str:
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    return os.path.dirname(os.path.abspath(script)) if script else os.getcwd()


def session() -> Session:
    """The recording session, started (and its exit hook registered) on first use."""
    global _session
    if _session is None:
        out = os.environ.get("MVM_SDK_OUT_PATH", "")
        if not out:
            raise SandboxError("MVM_SDK_MODE=record needs MVM_SDK_OUT_PATH: the file the recording is written to")
        _session = Session(os.path.abspath(out), _script_dir())
        atexit.register(_session.write)
    return _session


def sandbox_spec(
    template: object,
    env: object,
    include: object,
    resources: object,
    network: object,
) -> Dict[str, Any]:
    """Check ``Sandbox.create``'s arguments and return the recorded sandbox."""
    if template not in TEMPLATES:
        raise SandboxError("template must be one of %s, got %r" % (", ".join(TEMPLATES), template))
    return {
        "template": template,
        "env": _env(env),
        "include": _include(include),
        "resources": _resources(resources),
        "network": _network(network),
        "operations": [],
    }


def _env(env: object) -> Dict[str, Dict[str, Any]]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise SandboxError("env must be a dict of names to strings or mvm.secret(...), got %s" % type(env).__name__)
    out = {}
    for key, value in env.items():
        if not isinstance(key, str) or not full_match(_spec.PATTERN_ENV_NAME, key):
            raise SandboxError("env name %r is not a valid variable name" % (key,))
        if isinstance(value, str):
            out[key] = {"kind": "literal", "value": value}
        elif isinstance(value, Helper) and value.helper in ("literal", "secret"):
            out[key] = dict(value.value)
            if "hosts" in out[key]:
                out[key]["hosts"] = list(out[key]["hosts"])
        else:
            raise SandboxError("env[%r] must be a string, mvm.literal(...) or mvm.secret(...)" % key)
    return out


def _include(include: object) -> List[str]:
    if include is None:
        return []
    if not isinstance(include, list) or not all(isinstance(g, str) and g for g in include):
        raise SandboxError("include must be a list of non-empty glob strings relative to the script's directory")
    return list(include)


def _resources(resources: object) -> Dict[str, int]:
    out = {
        "cpu_cores": _spec.DEFAULT_RESOURCES_CPU_CORES,
        "memory_mb": _spec.DEFAULT_RESOURCES_MEMORY_MB,
        "rootfs_size_mb": _spec.DEFAULT_RESOURCES_ROOTFS_SIZE_MB,
    }
    if isinstance(resources, Helper) and resources.helper == "resources":
        return dict(resources.value)
    if isinstance(resources, dict):
        for key, value in resources.items():
            if key not in out or isinstance(value, bool) or not isinstance(value, int):
                raise SandboxError("resources[%r] is not one of cpu_cores, memory_mb, rootfs_size_mb with an integer" % (key,))
            out[key] = value
    elif resources is not None:
        raise SandboxError("resources must be mvm.resources(...) or a dict")
    return out


def _network(network: object) -> Dict[str, Any]:
    if network is None:
        default: Dict[str, Any] = _network_helper().value
        return default
    if isinstance(network, Helper) and network.helper == "network":
        value: Dict[str, Any] = network.value
        return value
    raise SandboxError("network must be mvm.network(...)")


def run_op(cmd: object, background: bool) -> Dict[str, Any]:
    if isinstance(cmd, str):
        if not cmd.strip():
            raise SandboxError("the command line is empty")
    elif not isinstance(cmd, list) or not cmd or not all(isinstance(x, str) for x in cmd) or not cmd[0]:
        raise SandboxError("a command is a shell line or a non-empty list of strings")
    return {"op": "run", "cmd": cmd if isinstance(cmd, str) else list(cmd), "background": background}


def write_op(path: object, data: object) -> Dict[str, Any]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise SandboxError("files.write needs an absolute guest path, got %r" % (path,))
    if isinstance(data, str):
        raw = data.encode("utf-8")
    elif isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    else:
        raise SandboxError("files.write data must be str or bytes")
    import base64  # here, not at module level: `import mvm` stays fast

    return {"op": "write", "path": path, "data_b64": base64.b64encode(raw).decode("ascii")}
