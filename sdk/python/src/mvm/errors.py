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
