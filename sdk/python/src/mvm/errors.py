"""The errors the SDK raises.

Codes are the same stable strings the static compiler (``mvmctl compile``)
prints, so a declaration is rejected the same way on both routes.
"""

from __future__ import annotations


class DeclarationError(Exception):
    """A declaration the SDK cannot lower to valid Workload IR.

    ``code`` is a stable finding code such as ``E_KWARG_UNKNOWN``; ``path``
    is the JSON pointer into the IR when the problem was found by IR
    validation, ``""`` otherwise.
    """

    def __init__(self, code: str, message: str, hint: str = "", path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.path = path

    def __str__(self) -> str:
        where = "%s: " % self.path if self.path else ""
        text = "%serror[%s]: %s" % (where, self.code, self.message)
        if self.hint:
            text += "\n  hint: " + self.hint
        return text


class SandboxError(Exception):
    """A runtime-SDK call that cannot be carried out (wrong mode, bad argument, killed sandbox)."""


class ApiError(SandboxError):
    """The mvm API (``mvmctl serve``) answered with an error.

    ``code`` is the stable code from docs/api.md (e.g. ``E_SANDBOX_NOT_FOUND``),
    ``message`` and ``hint`` are the server's words, ``status`` the HTTP status
    (0 when no answer came at all).
    """

    def __init__(self, code: str, message: str, hint: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.status = status

    def __str__(self) -> str:
        text = "error[%s]: %s" % (self.code, self.message)
        if self.hint:
            text += "\n  hint: " + self.hint
        return text


class SandboxNotFound(ApiError):
    """No sandbox by that id (``E_SANDBOX_NOT_FOUND``)."""


class TemplateNotFound(ApiError):
    """No snapshot, image or base template by that name (``E_TEMPLATE_NOT_FOUND``)."""


class FileNotFound(ApiError):
    """No such guest path (``E_FILE_NOT_FOUND``)."""


class Timeout(ApiError):
    """Something did not finish in time: the sandbox did not become ready
    (``E_TIMEOUT``), or a command's own ``timeout`` fired and its result was
    asked to raise (``check=True``)."""


class PolicyRefused(ApiError):
    """The operator's policy or the plan refused the launch (``E_POLICY_REFUSED``)."""


class SecretsMissing(ApiError):
    """A secret the sandbox needs is not in the store (``E_SECRETS_MISSING``)."""


class EgressDenied(ApiError):
    """A network destination was refused (``E_EGRESS_DENIED``)."""


class Unauthorized(ApiError):
    """The TCP API refused the bearer token (``E_API_UNAUTHORIZED``); check ``MVM_API_TOKEN``."""


class ServerUnavailable(ApiError):
    """No API server answered (and none could be started)."""


class CommandExitError(SandboxError):
    """A command run with ``check=True`` exited non-zero."""

    def __init__(self, message: str, stdout: str, stderr: str, exit_code: int) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code


class FunctionError(SandboxError):
    """``Sandbox.invoke`` ran the function and it raised: ``kind`` is the
    exception's type name, ``traceback`` the guest-side traceback text."""

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__("%s: %s" % (kind, message) if kind else message)
        self.kind = kind
        self.message = message
        self.traceback = traceback


#: Error codes with their own class; any other code is a plain ``ApiError``.
ERROR_CLASSES = {
    "E_SANDBOX_NOT_FOUND": SandboxNotFound,
    "E_TEMPLATE_NOT_FOUND": TemplateNotFound,
    "E_FILE_NOT_FOUND": FileNotFound,
    "E_TIMEOUT": Timeout,
    "E_POLICY_REFUSED": PolicyRefused,
    "E_SECRETS_MISSING": SecretsMissing,
    "E_EGRESS_DENIED": EgressDenied,
    "E_API_UNAUTHORIZED": Unauthorized,
    "E_SERVER_UNAVAILABLE": ServerUnavailable,
}


def api_error(code: str, message: str, hint: str = "", status: int = 0) -> ApiError:
    """The typed exception for an error body ``{"error": {code, message, hint}}``."""
    return ERROR_CLASSES.get(code, ApiError)(code, message, hint, status)
