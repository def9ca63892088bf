"""``@mvm.app``, ``mvm.workload`` and emission of the recorded declaration.

Decorating records the declaration (one per file) and returns the function
unchanged, so importing a declaration file has no other effect; this is what
lets the same file be imported inside the guest by the function runner.
"""

from __future__ import annotations

import os
import sys

from mvm import _spec
from mvm import arguments as a
from mvm.arguments import checked
from mvm.canonical import canonical_json
from mvm.errors import DeclarationError
from mvm.helpers import Helper, expect, hook_list, python_image
from mvm.helpers import local_path as _local_path, network as _network, no_deps as _no_deps, resources as _resources
from mvm.validate import Finding, validate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


class _Declaration:
    __slots__ = ("file", "app", "workload_id")

    def __init__(self, file: str) -> None:
        self.file = file
        self.app: Optional[Dict[str, Any]] = None
        self.workload_id: Optional[str] = None


# Declarations by absolute file path, in the order they were first seen.
_declarations: Dict[str, _Declaration] = {}


def _declaration_for(file: str) -> _Declaration:
    path = os.path.abspath(file)
    found = _declarations.get(path)
    if found is None:
        found = _declarations[path] = _Declaration(path)
    return found


def reset() -> None:
    """Forget every recorded declaration (for tests and long-lived tools)."""
    _declarations.clear()


@checked("workload")
def workload(id: str) -> None:
    """Set the workload id of the declaration in the calling file (default: the app name)."""
    decl = _declaration_for(sys._getframe(2).f_code.co_filename)
    decl.workload_id = a.string("mvm.workload(id=)", id)


@checked("app")
def app(
    *,
    name: Optional[str] = None,
    source: Optional[Helper] = None,
    image: Optional[Helper] = None,
    resources: Optional[Helper] = None,
    dependencies: Optional[Helper] = None,
    network: Optional[Helper] = None,
    env: Optional[Dict[str, Any]] = None,
    entrypoint: Optional[Helper] = None,
    entrypoints: Optional[List[Helper]] = None,
    before_build: Any = None,
    before_start: Any = None,
    after_start: Any = None,
    before_stop: Any = None,
    addons: Optional[List[Helper]] = None,
    threat_tier: str = _spec.DEFAULT_APP_THREAT_TIER,
) -> Callable[[F], F]:
    """Declare the app that runs the decorated function; returns it unchanged."""
    if entrypoint is not None and entrypoints is not None:
        raise DeclarationError(
            "E_KWARG_CONFLICT",
            "mvm.app got both entrypoint= and entrypoints=",
            "use entrypoint= for one entrypoint or entrypoints=[...] for several",
        )
    app_name = a.optional_string("mvm.app(name=)", name)
    if entrypoints is not None and not isinstance(entrypoints, list):
        raise a.type_error("mvm.app(entrypoints=)", "a list of entrypoints", entrypoints)
    eps = [entrypoint] if entrypoint is not None else entrypoints
    declared = [
        expect("mvm.app(entrypoints=)[%d]" % i if entrypoints is not None else "mvm.app(entrypoint=)", ep, "entrypoint_function", "entrypoint").value
        for i, ep in enumerate(eps or [])
    ]
    if addons is not None and not isinstance(addons, list):
        raise a.type_error("mvm.app(addons=)", "a list of mvm.addon(...)", addons)
    tier = a.string("mvm.app(threat_tier=)", threat_tier)
    if tier not in _spec.CHOICES_APP_THREAT_TIER:
        raise DeclarationError(
            "E_INVALID_VALUE",
            "mvm.app(threat_tier=) must be %s, got %r" % (" or ".join('"%s"' % t for t in _spec.CHOICES_APP_THREAT_TIER), tier),
            "leave it out (untrusted) unless you wrote every line the app runs",
        )
    # An absent argument is the helper called without arguments, as in the
    # static compiler (crates/mvm-decl/tests/sdk_spec.rs checks it does so).
    body: Dict[str, Any] = {
        "source": (expect("mvm.app(source=)", source, "local_path") if source is not None else _local_path()).value,
        "image": (
            expect("mvm.app(image=)", image, "python_image", "node_image", "nix_packages", "oci_image").value
            if image is not None
            else python_image().value
        ),
        "resources": (expect("mvm.app(resources=)", resources, "resources") if resources is not None else _resources()).value,
        "dependencies": (
            expect("mvm.app(dependencies=)", dependencies, "python_deps", "node_deps", "no_deps")
            if dependencies is not None
            else _no_deps()
        ).value,
        "network": (expect("mvm.app(network=)", network, "network") if network is not None else _network()).value,
        "env": _env(env),
        "hooks": {
            "before_build": hook_list("mvm.app(before_build=)", before_build),
            "before_start": hook_list("mvm.app(before_start=)", before_start),
            "after_start": hook_list("mvm.app(after_start=)", after_start),
            "before_stop": hook_list("mvm.app(before_stop=)", before_stop),
        },
        "addons": [expect("mvm.app(addons=)[%d]" % i, x, "addon").value for i, x in enumerate(addons or [])],
        "mounts": [],
        "threat_tier": tier,
    }

    def decorate(fn: F) -> F:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise a.type_error("@mvm.app(...)", "a function defined with def", fn)
        decl = _declaration_for(fn.__code__.co_filename)
        if decl.app is not None:
            raise DeclarationError(
                "E_APPS_COUNT",
                "%s declares a second app (%s); a file declares exactly one" % (os.path.basename(decl.file), fn.__name__),
                "move the other app to its own file",
            )
        function = fn.__name__
        module = _module_name(decl.file)
        decl.app = dict(body)
        decl.app["name"] = app_name if app_name is not None else function.replace("_", "-")
        decl.app["entrypoints"] = _entrypoints(declared, eps is not None, module, function)
        return fn

    return decorate


def _env(env: object) -> Dict[str, Dict[str, Any]]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise a.type_error("mvm.app(env=)", "a dict of names to values", env)
    out: Dict[str, Dict[str, Any]] = {}
    for key, value in env.items():
        if not isinstance(key, str):
            raise a.type_error("mvm.app(env=) key", "a string", key)
        where = "mvm.app(env=)[%r]" % key
        if isinstance(value, str):
            out[key] = {"kind": "literal", "value": value}
            continue
        h = expect(where, value, "literal", "secret")
        if h.helper == "secret" and h.extra is not None and h.extra != key:
            raise DeclarationError(
                "E_SECRET_VAR_MISMATCH",
                "mvm.secret(var=%r) is set as env %r" % (h.extra, key),
                "make var equal to the env name %r, or leave var out" % key,
            )
        out[key] = _copy_env_value(h.value)
    return out


def _copy_env_value(value: Dict[str, Any]) -> Dict[str, Any]:
    # A helper's value may be reused in several declarations: copy its list too.
    out = dict(value)
    if "hosts" in out:
        out["hosts"] = list(out["hosts"])
    return out


def _module_name(file: str) -> str:
    """The default entrypoint module (declarations.md: the file's path
    relative to the source root, dotted, without extension). The source root
    is the file's directory joined with local_path's path, which may not
    contain "..", so it is that directory or one below it, and the module is
    the file's name without extension."""
    return os.path.splitext(os.path.basename(file))[0]


def _entrypoints(declared: List[Dict[str, Any]], given: bool, module: str, function: str) -> List[Dict[str, Any]]:
    if not given:
        declared = [{"kind": "function", "module": module, "function": function, "primary": True, "name": None}]
    out = []
    for ep in declared:
        primary = ep["primary"] or len(declared) == 1
        if ep["kind"] == "function":
            name = ep["name"] if ep["name"] is not None else ep["function"].replace("_", "-")
            out.append(
                {
                    "kind": "function",
                    "name": name,
                    "language": "python",
                    "module": ep["module"],
                    "function": ep["function"],
                    "format": _spec.FUNCTION_FORMAT,
                    "working_dir": _spec.WORKING_DIR,
                    "primary": primary,
                }
            )
        else:
            out.append(
                {
                    "kind": "command",
                    "name": ep["name"] if ep["name"] is not None else _spec.DEFAULT_ENTRYPOINT_NAME,
                    "command": ep["command"],
                    "working_dir": _spec.WORKING_DIR,
                    "primary": primary,
                }
            )
    return out


def _single() -> _Declaration:
    apps = [d for d in _declarations.values() if d.app is not None]
    if not apps:
        raise DeclarationError(
            "E_NO_DECLARATION",
            "no @mvm.app declaration was recorded",
            "decorate one module-level function with @mvm.app(...) before calling mvm.emit_json()",
        )
    if len(apps) > 1:
        raise DeclarationError(
            "E_APPS_COUNT",
            "%d files declare an app (%s); emit one at a time" % (len(apps), ", ".join(d.file for d in apps)),
            "import only the declaration you want to emit",
        )
    return apps[0]


def _build() -> Tuple[Dict[str, Any], List[Finding]]:
    decl = _single()
    assert decl.app is not None
    ir: Dict[str, Any] = {
        "schema_version": _spec.SCHEMA_VERSION,
        "id": decl.workload_id if decl.workload_id is not None else decl.app["name"],
        "apps": [decl.app],
        "volumes": [],
        "extensions": {},
    }
    findings = validate(ir)
    for f in findings:
        if f.severity == "error":
            raise DeclarationError(f.code, f.message, f.hint, f.path)
    return ir, [f for f in findings if f.severity == "warning"]


def to_ir() -> Dict[str, Any]:
    """The recorded declaration as a Workload IR dict (validated; every field present)."""
    return _build()[0]


def emit_json() -> None:
    """Write the canonical IR to stdout (no trailing newline); warnings go to stderr."""
    ir, warnings = _build()
    for w in warnings:
        sys.stderr.write("%s: warning[%s]: %s\n  hint: %s\n" % (w.path, w.code, w.message, w.hint))
    data = canonical_json(ir).encode("utf-8")
    # The bytes are the contract: write UTF-8 whatever the locale says.
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        buffer.write(data)
        buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()


__all__ = ["app", "workload", "to_ir", "emit_json", "reset"]
