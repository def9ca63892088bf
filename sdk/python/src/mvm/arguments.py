"""Argument binding and type checks shared by every helper.

Helpers are ordinary typed functions; :func:`checked` wraps one so that a
wrong call raises :class:`~mvm.errors.DeclarationError` with the same code
the static compiler gives (``E_KWARG_UNKNOWN``, ``E_KWARG_CONFLICT``,
``E_KWARG_TYPE``) instead of Python's ``TypeError``. The accepted names,
which ones may be positional and which are required come from the
compiler's helper table (``mvm._spec``, generated from crates/mvm-decl);
tests/test_spec.py checks that each function's signature says the same.
"""

from __future__ import annotations

from mvm import _spec
from mvm.errors import DeclarationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


def checked(helper: str) -> Callable[[F], F]:
    """Wrap the function of ``helper`` (shown to users as ``mvm.<helper>``)."""
    display = "mvm." + helper
    names = _spec.HELPER_PARAMS[helper]
    n_positional = _spec.HELPER_POSITIONAL[helper]
    positional = names[:n_positional]
    required = _spec.HELPER_REQUIRED[helper]

    def wrap(fn: F) -> F:
        def bound(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_positional:
                raise DeclarationError(
                    "E_KWARG_CONFLICT",
                    "%s takes %s" % (display, _positional_phrase(positional)),
                    "pass the other arguments by keyword: %s" % ", ".join(names),
                )
            for key in kwargs:
                if key not in names:
                    from mvm.suggest import closest

                    guess = closest(key, names)
                    raise DeclarationError(
                        "E_KWARG_UNKNOWN",
                        "%s has no argument %r" % (display, key),
                        ("did you mean %r? " % guess if guess else "") + "allowed arguments: %s" % ", ".join(names),
                    )
                if key in positional[: len(args)]:
                    raise DeclarationError(
                        "E_KWARG_CONFLICT",
                        "%s got %r both by position and by keyword" % (display, key),
                        "pass %r once" % key,
                    )
            given = dict(zip(positional, args))
            given.update(kwargs)
            # None means "not given", as in the static compiler: the default applies.
            given = {k: v for k, v in given.items() if v is not None}
            for name in required:
                if name not in given:
                    raise DeclarationError(
                        "E_KWARG_TYPE",
                        "%s needs the argument %r" % (display, name),
                        "add %s=..." % name,
                    )
            return fn(**given)

        # functools.wraps, without importing functools (import time matters).
        bound.__name__ = fn.__name__
        bound.__qualname__ = fn.__qualname__
        bound.__doc__ = fn.__doc__
        bound.__module__ = fn.__module__
        bound.__wrapped__ = fn  # type: ignore[attr-defined]
        return bound  # type: ignore[return-value]

    return wrap


def _positional_phrase(positional: tuple[str, ...]) -> str:
    if not positional:
        return "no positional arguments"
    if len(positional) == 1:
        return "at most one positional argument (%s)" % positional[0]
    return "at most %d positional arguments (%s)" % (len(positional), ", ".join(positional))


def type_error(where: str, expected: str, value: object) -> DeclarationError:
    """``E_KWARG_TYPE`` for ``where`` (e.g. ``mvm.resources(memory_mb=)``)."""
    return DeclarationError(
        "E_KWARG_TYPE",
        "%s must be %s, got %s" % (where, expected, _describe(value)),
        "write %s as %s" % (where, expected),
    )


def _describe(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a dict"
    helper = getattr(value, "helper", None)
    if isinstance(helper, str):
        return "mvm.%s(...)" % helper
    return "a %s" % type(value).__name__


def string(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise type_error(where, "a string", value)
    return value


def optional_string(where: str, value: object) -> str | None:
    if value is None:
        return None
    return string(where, value)


def integer(where: str, value: object) -> int:
    # bool is a subclass of int in Python; a declaration never means True as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(where, "an integer", value)
    return value


def boolean(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise type_error(where, "True or False", value)
    return value


def string_list(where: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise type_error(where, "a list of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise type_error("%s[%d]" % (where, i), "a string", item)
    return list(value)


def optional_string_list(where: str, value: object) -> list[str] | None:
    if value is None:
        return None
    return string_list(where, value)
