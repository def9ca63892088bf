"""mvm: declare a microVM workload next to the function it runs.

``@mvm.app(...)`` records a declaration; ``mvm.emit_json()`` prints it as
canonical Workload IR, byte-identical to what ``mvmctl compile`` produces
from the same file. ``mvm.Sandbox`` / ``mvm.AsyncSandbox`` are the runtime
SDK (live through ``mvmctl serve``, or record mode). Its API errors live in
``mvm.errors``; ``mvm.Timeout`` and ``mvm.EgressDenied`` stay the web
errors, the sandbox ones are ``mvm.errors.Timeout`` / ``mvm.errors.EgressDenied``.
``mvm.web_fetch`` / ``mvm.web_search`` are for code running in the guest:
the host makes the request, applying the app's secrets (docs/secrets.md).
See docs/sdk.md.
"""

from __future__ import annotations

from mvm.declaration import app, emit_json, reset, to_ir, workload
from mvm.errors import (
    ApiError,
    CommandExitError,
    DeclarationError,
    FileNotFound,
    FunctionError,
    PolicyRefused,
    SandboxError,
    SandboxNotFound,
    SecretsMissing,
    ServerUnavailable,
    TemplateNotFound,
    Unauthorized,
)
from mvm.helpers import (
    Helper,
    addon,
    dns_none,
    dns_resolver,
    dns_system,
    egress,
    entrypoint,
    entrypoint_function,
    hook,
    host_port,
    literal,
    local_path,
    network,
    nix_packages,
    no_deps,
    node_deps,
    node_image,
    oci_image,
    port,
    python_deps,
    python_image,
    resources,
    secret,
)
from mvm.sandbox import AsyncSandbox, CommandHandle, CommandResult, EntryInfo, Sandbox, SandboxInfo
from mvm.web import (
    BadRequest,
    Busy,
    EgressDenied,
    Response,
    SecretNotAllowed,
    Timeout,
    TooLarge,
    Unavailable,
    Upstream,
    WebError,
    web_fetch,
    web_search,
)

__version__ = "0.1.0"


class UnknownHelperError(DeclarationError, AttributeError):
    """``mvm.<name>`` for a name outside the helper allowlist (E_HELPER_UNKNOWN)."""


def __getattr__(name: str) -> object:
    # Dunder lookups (copy, pickle, typing) must keep seeing a plain AttributeError.
    if name.startswith("__"):
        raise AttributeError(name)
    from mvm._spec import HELPER_PARAMS
    from mvm.suggest import closest

    guess = closest(name, HELPER_PARAMS)
    raise UnknownHelperError(
        "E_HELPER_UNKNOWN",
        "mvm.%s is not a declaration helper" % name,
        "did you mean mvm.%s?" % guess if guess else "see the helper list in docs/sdk.md",
    )


__all__ = [
    "DeclarationError", "SandboxError", "UnknownHelperError", "Helper", "Sandbox",
    "AsyncSandbox", "CommandHandle", "CommandResult", "EntryInfo", "SandboxInfo",
    "ApiError", "SandboxNotFound", "TemplateNotFound", "FileNotFound", "PolicyRefused", "SecretsMissing",
    "Unauthorized", "ServerUnavailable", "CommandExitError", "FunctionError",
    "app", "workload", "emit_json", "to_ir", "reset",
    "addon", "dns_none", "dns_resolver", "dns_system", "egress", "entrypoint", "entrypoint_function",
    "hook", "host_port", "literal", "local_path", "network", "nix_packages", "no_deps", "node_deps",
    "node_image", "oci_image", "port", "python_deps", "python_image", "resources", "secret",
    "web_fetch", "web_search", "Response", "WebError", "EgressDenied", "SecretNotAllowed", "Timeout",
    "TooLarge", "BadRequest", "Upstream", "Busy", "Unavailable",
]  # fmt: skip
