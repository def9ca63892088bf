"""IR validation: the same checks, codes, JSON pointers and order as
``mvm_ir::validate`` (crates/mvm-ir/src/validate.rs), so the first error
the SDK raises is the one the static compiler reports first.

All checks live in this one module. Not repeated here: the glob grammar
check (only empty and escaping globs are caught) and W_HOOK_UNPINNED_FETCH,
a warning that ``mvmctl compile`` reports when it builds the review.

The code order, ranges, phases and name patterns are the compiler's own,
from ``mvm._spec`` (generated from crates/mvm-decl and mvm-ir).
"""

from __future__ import annotations

from mvm import _spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple


def full_match(pattern: str, s: str) -> bool:
    # `re` is imported here, not at module level, to keep `import mvm` fast;
    # re caches compiled patterns.
    import re

    return re.fullmatch(pattern, s, re.ASCII) is not None


def is_id(s: str) -> bool:
    return full_match(_spec.PATTERN_ID, s)


def is_identifier(s: str, dollar: bool) -> bool:
    return full_match(_spec.PATTERN_JS_IDENTIFIER if dollar else _spec.PATTERN_IDENTIFIER, s)


def looks_like_credential(key: str) -> bool:
    return key.upper().endswith(_spec.CREDENTIAL_SUFFIXES)


def source_escape(path: str) -> Optional[str]:
    """Why a bundle-relative path leaves the declaration's directory, if it does."""
    if path.startswith(("/", "\\")) or (len(path) >= 2 and path[0].isascii() and path[0].isalpha() and path[1] == ":"):
        return "is absolute"
    if path.startswith("~"):
        return 'starts with "~", which a shell expands to a home directory'
    if ".." in path.replace("\\", "/").split("/"):
        return 'has a ".." component'
    return None


def guest_path_problem(path: str) -> Optional[str]:
    if not path.startswith("/"):
        return "is not absolute"
    if ".." in path.split("/"):
        return 'has a ".." component'
    if "\0" in path:
        return "contains a NUL character"
    return None


def _ip_literal(host: str) -> Optional[Any]:
    import ipaddress

    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if "%" in bare:  # ipaddress reads zone ids ("fe80::1%eth0"); Rust's parser does not
        return None
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return None


def host_problem(host: str) -> Optional[Tuple[str, str]]:
    """``("wildcard" | "invalid", why)`` for an egress or resolver host, if wrong."""
    if "*" in host:
        return ("wildcard", 'contains "*"')
    if "/" in host:
        addr = host.split("/", 1)[0]
        if _ip_literal(addr) is not None:
            return ("wildcard", "is an address range (CIDR), not one host")
        return ("invalid", 'contains "/"; give a bare host name, not a URL')
    ip = _ip_literal(host)
    if ip is not None:
        return ("wildcard", "is the unspecified address, which means any host") if ip.is_unspecified else None
    name = host[:-1] if host.endswith(".") else host
    if not name:
        return ("invalid", "is empty")
    if len(name.encode("utf-8")) > 253:
        return ("invalid", "is longer than 253 characters")
    for label in name.split("."):
        if not label or len(label.encode("utf-8")) > 63:
            return ("invalid", "has an empty label or one longer than 63 characters")
        if label.startswith("-") or label.endswith("-"):
            return ("invalid", 'has a label starting or ending with "-"')
        if not full_match(r"[A-Za-z0-9_-]+", label):
            return ("invalid", 'has characters other than letters, digits, "-", "_" and "."')
    return None


def _seg(s: str) -> str:
    return s.replace("~", "~0").replace("/", "~1")


class Finding:
    """One validation finding (``severity`` is "error" or "warning")."""

    __slots__ = ("code", "severity", "path", "message", "hint")

    def __init__(self, code: str, path: str, message: str, hint: str) -> None:
        self.code = code
        self.severity = "warning" if code.startswith("W_") else "error"
        self.path = path
        self.message = message
        self.hint = hint

    def __repr__(self) -> str:
        return "%s: %s[%s]: %s" % (self.path or "/", self.severity, self.code, self.message)


class _Checker:
    def __init__(self) -> None:
        self.findings: List[Finding] = []

    def add(self, code: str, path: str, message: str, hint: str) -> None:
        self.findings.append(Finding(code, path, message, hint))

    def ident(self, path: str, what: str, value: str) -> None:
        if not is_id(value):
            self.add(
                "E_ID_INVALID",
                path,
                '%s "%s" is not a valid id' % (what, value),
                'use 1 to 63 characters: a lowercase letter, then lowercase letters, digits or "-" (e.g. "hello-app")',
            )

    def host(self, path: str, host: str, what: str) -> None:
        problem = host_problem(host)
        if problem is None:
            return
        kind, why = problem
        if kind == "wildcard":
            self.add(
                "E_NETWORK_WILDCARD",
                path,
                '%s "%s" %s' % (what, host, why),
                'list each host the app needs by name or address, e.g. "pypi.org"; wildcards and ranges are not allowed',
            )
        else:
            self.add("E_INVALID_VALUE", path, '%s "%s" %s' % (what, host, why), "give a DNS name or an IP address, without scheme, port or path")

    def port(self, path: str, port: int) -> None:
        if port == 0:
            self.add("E_INVALID_VALUE", path, "port 0 is not a port", "use the port the service listens on, 1 to 65535")

    def argv(self, path: str, argv: List[str], what: str) -> None:
        if not argv:
            self.add("E_EMPTY_COMMAND", path, "%s has an empty argv" % what, 'give the program and its arguments, e.g. ["python3", "-m", "app"]')
        elif not argv[0].strip():
            self.add("E_EMPTY_COMMAND", path + "/0", "%s has an empty program name" % what, 'put the program to run first, e.g. ["python3", "-m", "app"]')

    def hooks(self, path: str, hooks: Dict[str, List[Dict[str, Any]]]) -> None:
        for phase in _spec.PHASES:
            for i, cmd in enumerate(hooks[phase]):
                p = "%s/%s/%d" % (path, phase, i)
                if cmd["kind"] == "shell":
                    if not cmd["line"].strip():
                        self.add("E_EMPTY_COMMAND", p + "/line", "hook shell line is empty", "write the command to run, or remove the hook")
                else:
                    self.argv(p + "/argv", cmd["argv"], "hook")


def validate(ir: Dict[str, Any]) -> List[Finding]:
    """Every finding for workload ``ir``, sorted by JSON pointer then code (as mvm_ir does)."""
    c = _Checker()
    c.ident("/id", "workload id", ir["id"])
    if len(ir["apps"]) != 1:
        c.add(
            "E_APPS_COUNT",
            "/apps",
            "the workload has %d apps; IR 0.1 needs exactly one" % len(ir["apps"]),
            "declare exactly one app per workload; split several apps into separate workloads",
        )
    volumes = set()
    for i, vol in enumerate(ir["volumes"]):
        p = "/volumes/%d" % i
        c.ident(p + "/name", "volume name", vol["name"])
        if vol["name"] in volumes:
            c.add("E_INVALID_VALUE", p + "/name", 'volume "%s" is declared more than once' % vol["name"], "give each volume a distinct name, or remove the duplicate")
        volumes.add(vol["name"])
        if vol["size_mb"] == 0:
            c.add("E_INVALID_VALUE", p + "/size_mb", "volume size is 0 MiB", "give the volume a size of at least 1 MiB")
    for ai, app in enumerate(ir["apps"]):
        _app(c, "/apps/%d" % ai, app)
    return sorted(c.findings, key=lambda f: (f.path, _spec.CODES.index(f.code)))


def _app(c: _Checker, at: str, app: Dict[str, Any]) -> None:
    c.ident(at + "/name", "app name", app["name"])
    _source(c, at + "/source", app["source"])
    _image(c, at + "/image", app["image"])
    for field, low, high, unit in _spec.RANGES:
        value = app["resources"][field]
        if not low <= value <= high:
            c.add(
                "E_RESOURCES_RANGE",
                "%s/resources/%s" % (at, field),
                "%s %d%s is outside %d..=%d" % (field, value, unit, low, high),
                "set %s between %d and %d%s" % (field, low, high, unit),
            )
    deps = app["dependencies"]
    if deps["kind"] != "none":
        why = "is empty" if not deps["lockfile"] else source_escape(deps["lockfile"])
        if why:
            c.add(
                "E_INVALID_VALUE",
                at + "/dependencies/lockfile",
                'lockfile path "%s" %s' % (deps["lockfile"], why),
                'give the lockfile\'s path relative to the source path, e.g. "uv.lock" or "package-lock.json"',
            )
    _network(c, at + "/network", app["network"], app["threat_tier"])
    _env(c, at + "/env", app["env"])
    _secret_bindings(c, at + "/env", app["env"], app["network"])
    _entrypoints(c, at + "/entrypoints", app["entrypoints"])
    c.hooks(at + "/hooks", app["hooks"])
    seen = set()
    for i, addon in enumerate(app["addons"]):
        p = "%s/addons/%d" % (at, i)
        c.ident(p + "/name", "addon name", addon["name"])
        if addon["name"] in seen:
            c.add("E_INVALID_VALUE", p + "/name", 'addon "%s" is attached more than once' % addon["name"], "attach each addon once")
        seen.add(addon["name"])
        if not addon["source"]["path"].strip():
            c.add("E_INVALID_VALUE", p + "/source/path", "addon source path is empty", "give the directory holding the addon")
        c.hooks(p + "/hooks", addon["hooks"])


def _source(c: _Checker, at: str, source: Dict[str, Any]) -> None:
    if source["kind"] != "local_path":
        c.add(
            "E_SOURCE_KIND_UNSUPPORTED",
            at + "/kind",
            'source kind "%s" is reserved and not supported in IR 0.1' % source["kind"],
            "use mvm.local_path(...) pointing at the app's code",
        )
        return
    why = source_escape(source["path"])
    if why:
        c.add(
            "E_SOURCE_ESCAPES",
            at + "/path",
            'source path "%s" %s' % (source["path"], why),
            "use a path relative to the declaration's directory that stays inside it, e.g. \".\" or \"src\"",
        )
    for field in ("include", "exclude"):
        for i, glob in enumerate(source[field]):
            problem = "is empty" if not glob else source_escape(glob)
            if problem:
                c.add(
                    "E_INVALID_VALUE",
                    "%s/%s/%d" % (at, field, i),
                    'glob "%s" %s' % (glob, problem),
                    'write a glob relative to the source path, e.g. "**/*.py" or "tests/**"',
                )


def _image(c: _Checker, at: str, image: Dict[str, Any]) -> None:
    if image["kind"] == "nix_packages":
        for i, pkg in enumerate(image["packages"]):
            if not full_match(_spec.PATTERN_NIX_PACKAGE, pkg):
                c.add(
                    "E_INVALID_VALUE",
                    "%s/packages/%d" % (at, i),
                    '"%s" is not a nix package attribute name' % pkg,
                    'use a nixpkgs attribute such as "python312" or "python3Packages.numpy" (letters, digits, _ . + -)',
                )
        return
    ref, digest = image["reference"], image["digest"]
    if not ref.strip():
        c.add("E_INVALID_VALUE", at + "/reference", "oci_base reference is empty", 'name an image, e.g. "debian:12-slim"')
    if digest is None:
        c.add(
            "W_OCI_MUTABLE",
            at + "/digest",
            'oci_base "%s" has no digest; the tag can move and change what gets built' % ref,
            'pin the image: mvm.oci_image(%r, digest="sha256:<64 hex>")' % ref,
        )
    elif not full_match(_spec.PATTERN_SHA256_DIGEST, digest):
        c.add(
            "E_INVALID_VALUE",
            at + "/digest",
            'digest "%s" is not "sha256:" followed by 64 lowercase hex digits' % digest,
            "copy the full sha256 digest of the image, or leave digest out to build from the tag",
        )


def _network(c: _Checker, at: str, net: Dict[str, Any], tier: str) -> None:
    closed = net["mode"] == "none"
    if net["mode"] == "host" and tier == "untrusted":
        c.add(
            "E_HOST_NETWORK_UNTRUSTED",
            at + "/mode",
            'network mode "host" on an untrusted app gives it the host\'s network',
            'use mode "bridge" with an egress allowlist, or mark the app threat_tier "trusted" if you trust its code',
        )
    if closed and net["ports"]:
        c.add("E_NETWORK_EGRESS_CLOSED", at + "/ports", 'ports are forwarded but network mode is "none"', 'set network mode to "bridge", or remove the ports')
    if closed and net["egress"]["allowlist"]:
        c.add(
            "E_NETWORK_EGRESS_CLOSED",
            at + "/egress/allowlist",
            'an egress allowlist is given but network mode is "none"',
            'set network mode to "bridge", or empty the allowlist',
        )
    if closed and net["dns"]["kind"] != "none":
        c.add("E_DNS_WITHOUT_NETWORK", at + "/dns", 'dns is configured but network mode is "none"', 'set network mode to "bridge", or drop dns')
    seen = set()
    for i, port in enumerate(net["ports"]):
        p = "%s/ports/%d/guest" % (at, i)
        if port["guest"] == 0:
            c.add("E_INVALID_VALUE", p, "guest port 0 is not a port", "use the port the app listens on, 1 to 65535")
        if (port["guest"], port["proto"]) in seen:
            c.add("E_INVALID_VALUE", p, "guest port %d is forwarded more than once" % port["guest"], "forward each guest port once per protocol")
        seen.add((port["guest"], port["proto"]))
    for i, hp in enumerate(net["egress"]["allowlist"]):
        p = "%s/egress/allowlist/%d" % (at, i)
        c.host(p + "/host", hp["host"], "egress host")
        c.port(p + "/port", hp["port"])
    dns = net["dns"]
    if dns["kind"] == "resolver":
        c.host(at + "/dns/host", dns["host"], "dns resolver")
        c.port(at + "/dns/port", dns["port"])


def _env(c: _Checker, at: str, env: Dict[str, Dict[str, Any]]) -> None:
    for key in sorted(env):
        value = env[key]
        p = "%s/%s" % (at, _seg(key))
        if not full_match(_spec.PATTERN_ENV_NAME, key):
            c.add(
                "E_ENV_NAME_INVALID",
                p,
                'env name "%s" is not a valid variable name' % key,
                'use letters, digits and "_", not starting with a digit (e.g. "MODEL_PATH")',
            )
        if value["kind"] == "secret_ref":
            if not full_match(_spec.PATTERN_SECRET_NAME, value["name"]):
                c.add(
                    "E_SECRET_NAME_INVALID",
                    p + "/name",
                    'secret name "%s" is not valid' % value["name"],
                    'use 1 to 128 characters: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. "api-key")',
                )
        elif looks_like_credential(key):
            c.add(
                "W_SECRET_LITERAL",
                p + "/value",
                'env "%s" looks like a credential but holds a literal value that is stored in the IR and image' % key,
                'pass it as a secret instead: mvm.secret("name")',
            )


def _ascii_lower(s: str) -> str:
    # Rust's to_ascii_lowercase: str.lower() would also fold non-ASCII letters.
    return "".join(chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch for ch in s)


def _host_key(host: str) -> str:
    """A host as compared with grants: case-insensitive, a trailing dot is the same host."""
    return _ascii_lower(host[:-1] if host.endswith(".") else host)


def header_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot be the header a secret is set into, if it cannot."""
    if not name:
        return "is empty"
    if not full_match(_spec.PATTERN_HEADER_NAME, name):
        return 'is not an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~ only, no spaces or ":")'
    if _ascii_lower(name) in _spec.HOST_OWNED_HEADERS:
        return "is a header the host sets itself on every request"
    return None


def _secret_bindings(c: _Checker, at: str, env: Dict[str, Dict[str, Any]], net: Dict[str, Any]) -> None:
    """E_SECRET_HEADER_INVALID, E_SECRET_HOST_*, W_SECRET_UNBOUND and
    E_SECRET_BINDING_CONFLICT, as mvm_ir's validate/bindings.rs raises them."""
    closed = net["mode"] == "none"
    grants = set() if closed else {_host_key(hp["host"]) for hp in net["egress"]["allowlist"]}
    # (key, name, header lowercase, header as shown, host keys, path)
    setters: List[Tuple[str, str, str, str, set, str]] = []
    for key in sorted(env):
        value = env[key]
        if value["kind"] != "secret_ref":
            continue
        p = "%s/%s" % (at, _seg(key))
        name, auth, header, hosts = value["name"], value["type"], value["header"], value["hosts"]
        header_ok = _secret_header(c, p, name, auth, header)
        _secret_hosts(c, p, name, auth, hosts, grants, closed)
        if header_ok and auth != "token" and (auth != "header" or header is not None):
            if auth == "header":
                setters.append((key, name, _ascii_lower(header), header, {_host_key(h) for h in hosts}, p + "/header"))
            else:
                setters.append((key, name, "authorization", "Authorization", {_host_key(h) for h in hosts}, p + "/type"))
    for j, later in enumerate(setters):
        for earlier in setters[:j]:
            if earlier[2] != later[2]:
                continue
            if not earlier[4] and not later[4]:
                shared = "every egress grant"
            elif not earlier[4]:
                shared = '"%s"' % min(later[4])
            elif not later[4]:
                shared = '"%s"' % min(earlier[4])
            else:
                both = earlier[4] & later[4]
                if not both:
                    continue
                shared = '"%s"' % min(both)
            c.add(
                "E_SECRET_BINDING_CONFLICT",
                later[5],
                'secrets "%s" (env %s) and "%s" (env %s) both set the %s header on requests to %s'
                % (earlier[1], earlier[0], later[1], later[0], later[3], shared),
                "bind them to different hosts, or keep one of them; the host could not tell which to send",
            )
            break


def _secret_header(c: _Checker, p: str, name: str, auth: str, header: Optional[str]) -> bool:
    if auth == "header" and header is None:
        message = 'secret "%s" has type "header" but no header name' % name
        hint = 'name the header the service reads the credential from, e.g. header="X-Api-Key" (or use type "bearer" for Authorization: Bearer)'
    elif auth == "header":
        why = header_problem(header)  # type: ignore[arg-type]
        if why is None:
            return True
        message = 'header "%s" of secret "%s" %s' % (header, name, why)
        hint = (
            'give the header the service reads the credential from, e.g. "X-Api-Key"; framing, connection and proxy '
            "headers (Host, Content-Length, Connection, Proxy-Authorization, ...) are the host's"
        )
    elif header is not None:
        message = 'secret "%s" names header "%s" but its type is "%s"; only type "header" uses a header name' % (name, header, auth)
        hint = 'set type="header" to send the secret in that header, or drop header'
    else:
        return True
    c.add("E_SECRET_HEADER_INVALID", p + "/header", message, hint)
    return False


def _secret_hosts(c: _Checker, p: str, name: str, auth: str, hosts: List[str], grants: set, closed: bool) -> None:
    if not hosts and auth != "token":
        c.add(
            "W_SECRET_UNBOUND",
            p + "/hosts",
            'secret "%s" has type "%s" and no hosts: the host adds it to every request to any of the app\'s egress grants' % (name, auth),
            'bind it to the hosts that need it, e.g. hosts=["api.openai.com"]',
        )
    for i, host in enumerate(hosts):
        hp = "%s/hosts/%d" % (p, i)
        problem = host_problem(host)
        if problem is not None and problem[0] == "wildcard":
            c.add(
                "E_NETWORK_WILDCARD",
                hp,
                'bound host "%s" of secret "%s" %s' % (host, name, problem[1]),
                'bind the secret to each host by name or address, e.g. hosts=["api.openai.com"]; wildcards and ranges are not allowed',
            )
        elif problem is not None:
            c.add(
                "E_SECRET_HOST_INVALID",
                hp,
                'bound host "%s" of secret "%s" %s' % (host, name, problem[1]),
                'give a DNS name or an IP address, without scheme, port or path, e.g. "api.openai.com"',
            )
        elif _host_key(host) not in grants:
            c.add(
                "E_SECRET_HOST_NOT_GRANTED",
                hp,
                ('secret "%s" is bound to "%s", but network mode is "none": the app has no egress grants' if closed
                 else 'secret "%s" is bound to "%s", which is not one of the app\'s egress grants') % (name, host),
                'grant it as well (mvm.network(mode="deny", allow_https=["%s"]), or an egress allowlist entry '
                '{"host": "%s", "port": 443}), or remove it from the secret\'s hosts' % (host, host),
            )


def _entrypoints(c: _Checker, at: str, eps: List[Dict[str, Any]]) -> None:
    primaries = [i for i, ep in enumerate(eps) if ep["primary"]]
    if not primaries:
        c.add(
            "E_PRIMARY_ENTRYPOINT",
            at,
            "the app has no entrypoint" if not eps else "no entrypoint is primary",
            'declare at least one entrypoint and set "primary": true on exactly one',
        )
    for i in primaries[1:]:
        c.add(
            "E_PRIMARY_ENTRYPOINT",
            "%s/%d/primary" % (at, i),
            'entrypoint "%s" is primary, but so is "%s"' % (eps[i]["name"], eps[primaries[0]]["name"]),
            'set "primary": true on exactly one entrypoint',
        )
    seen = set()
    for i, ep in enumerate(eps):
        p = "%s/%d" % (at, i)
        c.ident(p + "/name", "entrypoint name", ep["name"])
        if ep["name"] in seen:
            c.add(
                "E_PRIMARY_ENTRYPOINT",
                p + "/name",
                'entrypoint name "%s" is used more than once' % ep["name"],
                "give each entrypoint a distinct name; `mvmctl invoke --entrypoint NAME` selects by it",
            )
        seen.add(ep["name"])
        why = guest_path_problem(ep["working_dir"])
        if why:
            c.add("E_INVALID_VALUE", p + "/working_dir", 'working_dir "%s" %s' % (ep["working_dir"], why), 'use an absolute guest path such as "/app"')
        if ep["kind"] == "function":
            dollar = ep["language"] == "node"
            if not all(is_identifier(part, dollar) for part in ep["module"].split(".")):
                c.add(
                    "E_INVALID_VALUE",
                    p + "/module",
                    'module "%s" is not a dotted module path' % ep["module"],
                    'name the module as identifiers joined by dots, e.g. "app" or "pkg.handlers"',
                )
            if not is_identifier(ep["function"], dollar):
                c.add(
                    "E_INVALID_VALUE",
                    p + "/function",
                    'function "%s" is not an identifier' % ep["function"],
                    'give the function\'s plain name, e.g. "greet" (letters, digits, "_")',
                )
        else:
            c.argv(p + "/command", ep["command"], "command entrypoint")
