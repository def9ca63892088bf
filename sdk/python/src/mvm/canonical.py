"""Canonical JSON (RFC 8785, JCS) for the values the IR holds.

The IR contains only strings, integers, booleans, null, lists and objects
with string keys, so this writer accepts exactly those. Floats never appear
in IR that the SDK builds; they are refused rather than formatted loosely.
Written by hand (not ``json``) so importing ``mvm`` stays cheap and the
escaping rules are visible.
"""

from __future__ import annotations

# JCS escapes only these; every other character (including U+007F, U+2028
# and everything outside the BMP) is written as UTF-8 as is.
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append("\\u%04x" % ord(ch))
        elif "\ud800" <= ch <= "\udfff":
            # A lone surrogate cannot be encoded as UTF-8; JCS forbids it.
            raise ValueError(
                "string contains a lone surrogate (U+%04X), which canonical JSON cannot encode" % ord(ch)
            )
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf16_key(s: str) -> bytes:
    # Big-endian UTF-16 bytes compare in the same order as UTF-16 code
    # units, which is the order RFC 8785 sorts object keys by.
    return s.encode("utf-16-be", "surrogatepass")


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError("canonical JSON object keys must be strings, got %r" % (key,))
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    else:
        raise TypeError("canonical JSON cannot represent %s values" % type(value).__name__)


def canonical_json(value: object) -> str:
    """Serialize ``value`` as RFC 8785 canonical JSON text (no trailing newline)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def canonical_bytes(value: object) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes, the form that is hashed."""
    return canonical_json(value).encode("utf-8")
