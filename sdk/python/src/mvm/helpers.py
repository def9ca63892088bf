"""The declaration helpers (the allowlist of ``docs/sdk.md``).

Each helper checks its arguments and returns a :class:`Helper`: the IR
fragment it lowers to, tagged with the helper's name so that ``mvm.app``
can tell which helper was passed where. Nothing here has side effects.
"""

from __future__ import annotations

from mvm import _spec
from mvm import arguments as a
from mvm.arguments import checked
from mvm.errors import DeclarationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Union

    HookArg = Union[str, List[Any], "Helper"]


def _digits(s: str) -> bool:
    # str.isdigit alone accepts non-ASCII digits such as "٣".
    return s.isascii() and s.isdigit()


class Helper:
    """The result of one helper call: ``helper`` names it, ``value`` is its IR."""

    __slots__ = ("helper", "value", "extra")

    def __init__(self, helper: str, value: Any, extra: Any = None) -> None:
        self.helper = helper
        self.value = value
        # Data that is not IR but that ``mvm.app`` needs (mvm.secret's var).
        self.extra = extra

    def __repr__(self) -> str:
        return "mvm.%s(...) -> %r" % (self.helper, self.value)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Helper)
            and (self.helper, self.value, self.extra) == (other.helper, other.value, other.extra)
        )

    __hash__ = None  # type: ignore[assignment]


def expect(where: str, value: object, *helpers: str) -> Helper:
    """``value`` must be the result of one of ``helpers`` (E_KWARG_TYPE otherwise)."""
    if isinstance(value, Helper) and value.helper in helpers:
        return value
    expected = " or ".join("mvm.%s(...)" % h for h in helpers)
    raise a.type_error(where, expected, value)


def _in(where: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DeclarationError(
            "E_INVALID_VALUE",
            "%s must be one of %s, got %r" % (where, ", ".join(repr(x) for x in allowed), value),
            "use one of: %s" % ", ".join(allowed),
        )
    return value


def _port_number(where: str, value: object, low: int) -> int:
    n = a.integer(where, value)
    if not low <= n <= _spec.PORT_MAX:
        raise DeclarationError(
            "E_INVALID_VALUE",
            "%s must be a port number in %d..%d, got %d" % (where, low, _spec.PORT_MAX, n),
            "use a port between %d and %d" % (low, _spec.PORT_MAX),
        )
    return n


# --- source ---------------------------------------------------------------


@checked("local_path")
def local_path(
    path: str = _spec.DEFAULT_LOCAL_PATH_PATH, include: Optional[List[str]] = None, exclude: Optional[List[str]] = None
) -> Helper:
    """Package the files under ``path`` (relative to the declaration file's directory)."""
    inc = a.optional_string_list("mvm.local_path(include=)", include)
    exc = a.optional_string_list("mvm.local_path(exclude=)", exclude)
    return Helper(
        "local_path",
        {
            "kind": "local_path",
            "path": a.string("mvm.local_path(path=)", path),
            "include": list(_spec.DEFAULT_LOCAL_PATH_INCLUDE) if inc is None else inc,
            "exclude": list(_spec.DEFAULT_LOCAL_PATH_EXCLUDE) if exc is None else exc,
        },
    )


# --- image ----------------------------------------------------------------


@checked("python_image")
def python_image(python: str = _spec.DEFAULT_PYTHON_IMAGE_PYTHON, packages: Optional[List[str]] = None) -> Helper:
    """A Nix package image with CPython ``python`` (``"3.12"`` → ``python312``)."""
    version = a.string("mvm.python_image(python=)", python)
    if not (version.startswith("3.") and _digits(version[2:])):
        raise DeclarationError(
            "E_INVALID_VALUE",
            "mvm.python_image(python=) must look like \"3.13\", got %r" % version,
            "write the Python version as \"3.MINOR\", e.g. \"3.13\"",
        )
    extra = a.optional_string_list("mvm.python_image(packages=)", packages) or []
    return Helper("python_image", {"kind": "nix_packages", "packages": ["python3" + version[2:]] + extra})


@checked("node_image")
def node_image(node: Union[str, int] = _spec.DEFAULT_NODE_IMAGE_NODE, packages: Optional[List[str]] = None) -> Helper:
    """A Nix package image with Node.js ``node`` (``"22"`` → ``nodejs_22``)."""
    # An integer major version (node=22) is accepted, as the static compiler does.
    version = str(node) if isinstance(node, int) and not isinstance(node, bool) else a.string("mvm.node_image(node=)", node)
    if not _digits(version):
        raise DeclarationError(
            "E_INVALID_VALUE",
            "mvm.node_image(node=) must be a major version like \"22\", got %r" % version,
            "write the Node.js major version as a string, e.g. \"22\"",
        )
    extra = a.optional_string_list("mvm.node_image(packages=)", packages) or []
    return Helper("node_image", {"kind": "nix_packages", "packages": ["nodejs_" + version] + extra})


@checked("nix_packages")
def nix_packages(packages: List[str]) -> Helper:
    """An image made of exactly these Nix attribute names."""
    return Helper(
        "nix_packages",
        {"kind": "nix_packages", "packages": a.string_list("mvm.nix_packages(packages=)", packages)},
    )


@checked("oci_image")
def oci_image(reference: str, digest: Optional[str] = None) -> Helper:
    """An OCI base image; pin ``digest`` (``sha256:...``) or get W_OCI_MUTABLE."""
    return Helper(
        "oci_image",
        {
            "kind": "oci_base",
            "reference": a.string("mvm.oci_image(reference=)", reference),
            "digest": a.optional_string("mvm.oci_image(digest=)", digest),
        },
    )


# --- resources and dependencies -------------------------------------------


@checked("resources")
def resources(
    cpu_cores: Optional[int] = None,
    memory_mb: int = _spec.DEFAULT_RESOURCES_MEMORY_MB,
    rootfs_size_mb: int = _spec.DEFAULT_RESOURCES_ROOTFS_SIZE_MB,
    *,
    cpu: Optional[int] = None,
) -> Helper:
    """CPU, memory and root filesystem size; ``cpu`` is an alias of ``cpu_cores``."""
    if cpu is not None and cpu_cores is not None:
        raise DeclarationError(
            "E_KWARG_CONFLICT",
            "mvm.resources got both cpu and cpu_cores",
            "cpu is an alias of cpu_cores; pass only one of them",
        )
    if cpu is not None:
        cores = a.integer("mvm.resources(cpu=)", cpu)
    elif cpu_cores is not None:
        cores = a.integer("mvm.resources(cpu_cores=)", cpu_cores)
    else:
        cores = _spec.DEFAULT_RESOURCES_CPU_CORES
    return Helper(
        "resources",
        {
            "cpu_cores": cores,
            "memory_mb": a.integer("mvm.resources(memory_mb=)", memory_mb),
            "rootfs_size_mb": a.integer("mvm.resources(rootfs_size_mb=)", rootfs_size_mb),
        },
    )


@checked("python_deps")
def python_deps(lockfile: Optional[str] = None, tool: str = _spec.DEFAULT_PYTHON_DEPS_TOOL) -> Helper:
    """Install Python dependencies from ``lockfile`` with ``tool`` ("uv" or "pip-tools")."""
    t = _in("mvm.python_deps(tool=)", a.string("mvm.python_deps(tool=)", tool), _spec.CHOICES_PYTHON_DEPS_TOOL)
    t = _spec.ALIASES_PYTHON_DEPS_TOOL.get(t, t)
    lock = a.string("mvm.python_deps(lockfile=)", lockfile) if lockfile is not None else _spec.LOCKFILES_PYTHON_DEPS[t]
    return Helper("python_deps", {"kind": "python", "lockfile": lock, "tool": t})


@checked("node_deps")
def node_deps(lockfile: Optional[str] = None, tool: str = _spec.DEFAULT_NODE_DEPS_TOOL) -> Helper:
    """Install Node dependencies from ``lockfile`` with ``tool`` (npm, pnpm, yarn)."""
    t = _in("mvm.node_deps(tool=)", a.string("mvm.node_deps(tool=)", tool), _spec.CHOICES_NODE_DEPS_TOOL)
    lock = a.string("mvm.node_deps(lockfile=)", lockfile) if lockfile is not None else _spec.LOCKFILES_NODE_DEPS[t]
    return Helper("node_deps", {"kind": "node", "lockfile": lock, "tool": t})


@checked("no_deps")
def no_deps() -> Helper:
    """No dependency installation (the default)."""
    return Helper("no_deps", {"kind": "none"})


# --- network --------------------------------------------------------------


@checked("host_port")
def host_port(host: str, port: int) -> Helper:
    """One egress destination."""
    return Helper(
        "host_port",
        {
            "host": a.string("mvm.host_port(host=)", host),
            "port": _port_number("mvm.host_port(port=)", port, _spec.PORT_MIN),
        },
    )


def _host_port_entry(where: str, value: object) -> Dict[str, Any]:
    entry: Dict[str, Any] = (_dict_as_call(where, value, host_port) if isinstance(value, dict) else expect(where, value, "host_port")).value
    return entry


def _dict_as_call(where: str, value: Dict[Any, Any], helper: Any) -> Helper:
    """A ``{"guest": 8080}`` / ``{"host": h, "port": 443}`` dict read as the helper's keyword arguments."""
    for key in value:
        if not isinstance(key, str):
            raise a.type_error(where + " key", "a string", key)
    made: Helper = helper(**value)
    return made


@checked("egress")
def egress(allowlist: List[Helper]) -> Helper:
    """The egress allowlist: a list of ``mvm.host_port(...)``."""
    if not isinstance(allowlist, list):
        raise a.type_error("mvm.egress(allowlist=)", "a list of mvm.host_port(...)", allowlist)
    entries = [_host_port_entry("mvm.egress(allowlist=)[%d]" % i, x) for i, x in enumerate(allowlist)]
    return Helper("egress", entries)


# mvm.network's own ``egress`` argument hides the helper of the same name.
_egress_helper = egress


@checked("port")
def port(guest: int, host: int = _spec.DEFAULT_PORT_HOST, proto: str = _spec.DEFAULT_PORT_PROTO) -> Helper:
    """Forward host port ``host`` (0 = any free port) to ``guest``."""
    return Helper(
        "port",
        {
            "guest": _port_number("mvm.port(guest=)", guest, _spec.PORT_MIN),
            "host": _port_number("mvm.port(host=)", host, 0),
            "proto": _in("mvm.port(proto=)", a.string("mvm.port(proto=)", proto), _spec.CHOICES_PORT_PROTO),
        },
    )


@checked("dns_system")
def dns_system() -> Helper:
    """Use the host's resolver."""
    return Helper("dns_system", {"kind": "system"})


@checked("dns_none")
def dns_none() -> Helper:
    """No DNS (the default)."""
    return Helper("dns_none", {"kind": "none"})


@checked("dns_resolver")
def dns_resolver(host: str, port: int = _spec.DEFAULT_DNS_RESOLVER_PORT) -> Helper:
    """Use the resolver at ``host``:``port``."""
    return Helper(
        "dns_resolver",
        {
            "kind": "resolver",
            "host": a.string("mvm.dns_resolver(host=)", host),
            "port": _port_number("mvm.dns_resolver(port=)", port, _spec.PORT_MIN),
        },
    )


def _port_entry(where: str, value: object) -> Dict[str, Any]:
    entry: Dict[str, Any] = (_dict_as_call(where, value, port) if isinstance(value, dict) else expect(where, value, "port")).value
    return entry


@checked("network")
def network(
    mode: str = _spec.DEFAULT_NETWORK_MODE,
    ports: Optional[List[Any]] = None,
    egress: Optional[Any] = None,
    dns: Optional[Helper] = None,
    allow_https: Optional[List[str]] = None,
) -> Helper:
    """Network policy; ``mode="deny"`` with ``allow_https`` opens HTTPS to those hosts only."""
    m = _in("mvm.network(mode=)", a.string("mvm.network(mode=)", mode), _spec.CHOICES_NETWORK_MODE)
    if ports is None:
        ports = []
    if not isinstance(ports, list):
        raise a.type_error("mvm.network(ports=)", "a list of mvm.port(...)", ports)
    port_list = [_port_entry("mvm.network(ports=)[%d]" % i, p) for i, p in enumerate(ports)]
    allow: List[Dict[str, Any]] = []
    if egress is not None:
        allow = list((_egress_helper(egress) if isinstance(egress, list) else expect("mvm.network(egress=)", egress, "egress")).value)
    dns_value = None if dns is None else expect("mvm.network(dns=)", dns, "dns_system", "dns_none", "dns_resolver").value
    https = None if allow_https is None else a.string_list("mvm.network(allow_https=)", allow_https)
    if m == "deny":
        for name, given in (("egress", egress), ("dns", dns)):
            if given is not None:
                raise DeclarationError(
                    "E_KWARG_CONFLICT",
                    "mode \"deny\" cannot be combined with %s=" % name,
                    "use mode=\"bridge\" with an explicit egress allowlist, or allow_https=[...] with mode \"deny\"",
                )
        if https:
            allow += [{"host": h, "port": 443} for h in https]
            dns_value = {"kind": "system"}
            m = "bridge"
        else:
            m = "none"
    elif https is not None:
        if m != "bridge":
            raise DeclarationError(
                "E_KWARG_CONFLICT",
                "allow_https= cannot be used with mode \"%s\"" % m,
                "use mode=\"deny\" (closed except these HTTPS hosts) or mode=\"bridge\"",
            )
        allow += [{"host": h, "port": 443} for h in https]
        # Names in allow_https must resolve.
        if dns_value is None:
            dns_value = {"kind": "system"}
    unique = {(e["host"], e["port"]): e for e in allow}
    return Helper(
        "network",
        {
            "mode": m,
            "ports": port_list,
            "egress": {"allowlist": [unique[k] for k in sorted(unique)]},
            "dns": dns_value if dns_value is not None else {"kind": "none"},
        },
    )


# --- env ------------------------------------------------------------------


@checked("literal")
def literal(value: str) -> Helper:
    """A literal env value (a bare string in ``env`` means the same)."""
    return Helper("literal", {"kind": "literal", "value": a.string("mvm.literal(value=)", value)})


@checked("secret")
def secret(
    name: str,
    var: Optional[str] = None,
    *,
    type: str = _spec.DEFAULT_SECRET_TYPE,
    hosts: Optional[List[str]] = None,
    header: Optional[str] = None,
) -> Helper:
    """A reference to the host-held secret ``name``; the value never enters the IR.

    ``type`` says how the host applies it to a request it makes for the guest
    (``mvm.web_fetch``): ``"token"`` only where the guest put the token,
    ``"bearer"`` / ``"basic"`` as ``Authorization``, ``"header"`` in the
    header named by ``header``. ``hosts`` are the only hosts it may be sent
    to (each must be an egress grant); without them, any of the app's grants.
    """
    return Helper(
        "secret",
        {
            "kind": "secret_ref",
            "name": a.string("mvm.secret(name=)", name),
            "type": _in("mvm.secret(type=)", a.string("mvm.secret(type=)", type), _spec.CHOICES_SECRET_TYPE),
            "header": a.optional_string("mvm.secret(header=)", header),
            "hosts": a.optional_string_list("mvm.secret(hosts=)", hosts) or [],
        },
        a.optional_string("mvm.secret(var=)", var),
    )


# --- entrypoints and hooks ------------------------------------------------


def _optional_name(where: str, value: object) -> Optional[str]:
    return a.optional_string(where, value)


@checked("entrypoint_function")
def entrypoint_function(
    module: str, function: str, primary: bool = _spec.DEFAULT_ENTRYPOINT_FUNCTION_PRIMARY, name: Optional[str] = None
) -> Helper:
    """Invoke ``module.function`` in the guest (language from the declaration file)."""
    return Helper(
        "entrypoint_function",
        {
            "kind": "function",
            "module": a.string("mvm.entrypoint_function(module=)", module),
            "function": a.string("mvm.entrypoint_function(function=)", function),
            "primary": a.boolean("mvm.entrypoint_function(primary=)", primary),
            "name": _optional_name("mvm.entrypoint_function(name=)", name),
        },
    )


@checked("entrypoint")
def entrypoint(command: List[str], primary: bool = _spec.DEFAULT_ENTRYPOINT_PRIMARY, name: Optional[str] = None) -> Helper:
    """Boot into the process ``command`` (an argv list)."""
    return Helper(
        "entrypoint",
        {
            "kind": "command",
            "command": a.string_list("mvm.entrypoint(command=)", command),
            "primary": a.boolean("mvm.entrypoint(primary=)", primary),
            "name": _optional_name("mvm.entrypoint(name=)", name),
        },
    )


@checked("hook")
def hook(cmd: Union[str, List[str]]) -> Helper:
    """One hook command: a string is a shell line, a list of strings an argv."""
    if isinstance(cmd, str):
        return Helper("hook", {"kind": "shell", "line": cmd})
    return Helper("hook", {"kind": "argv", "argv": a.string_list("mvm.hook(cmd=)", cmd)})


def hook_list(where: str, value: object) -> List[Dict[str, Any]]:
    """Lower one hook phase argument (see declarations.md, "Hooks")."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"kind": "shell", "line": value}]
    if isinstance(value, Helper) and value.helper == "hook":
        return [value.value]
    if isinstance(value, list):
        if all(isinstance(x, str) for x in value):
            return [{"kind": "argv", "argv": list(value)}] if value else []
        out: List[Dict[str, Any]] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append({"kind": "shell", "line": item})
            elif isinstance(item, Helper) and item.helper == "hook":
                out.append(item.value)
            elif isinstance(item, list):
                out.append({"kind": "argv", "argv": a.string_list("%s[%d]" % (where, i), item)})
            else:
                raise a.type_error("%s[%d]" % (where, i), "a string, a list of strings or mvm.hook(...)", item)
        return out
    raise a.type_error(where, "a string, a list of strings, mvm.hook(...) or a list of those", value)


@checked("addon")
def addon(
    name: str,
    path: str,
    *,
    before_build: HookArg = None,  # type: ignore[assignment]
    before_start: HookArg = None,  # type: ignore[assignment]
    after_start: HookArg = None,  # type: ignore[assignment]
    before_stop: HookArg = None,  # type: ignore[assignment]
) -> Helper:
    """Attach the local addon at ``path``; its hooks run before the app's."""
    return Helper(
        "addon",
        {
            "name": a.string("mvm.addon(name=)", name),
            "source": {"kind": "local", "path": a.string("mvm.addon(path=)", path)},
            "hooks": {
                "before_build": hook_list("mvm.addon(before_build=)", before_build),
                "before_start": hook_list("mvm.addon(before_start=)", before_start),
                "after_start": hook_list("mvm.addon(after_start=)", after_start),
                "before_stop": hook_list("mvm.addon(before_stop=)", before_stop),
            },
        },
    )

