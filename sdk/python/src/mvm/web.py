"""Requests the host makes for the guest: ``mvm.web_fetch`` and ``mvm.web_search``.

Inside an mvm microVM these go over the agent's broker channel to the host,
which checks the destination against the app's egress grants, applies the
app's secrets (the guest only ever holds their opaque tokens), performs the
request with verified TLS and hands back the answer with every secret value
replaced by its token. Outside a microVM there is no broker: the calls raise
``Unavailable``. See docs/secrets.md.
"""

from __future__ import annotations

import os

# Everything else is imported where it is used: `import mvm` in the guest's
# function runner must stay cheap (tests/test_import.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

    Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]

#: Where the guest agent listens; ``MVM_BROKER_SOCKET`` overrides it (tests).
GUEST_SOCKET = "/run/mvm/broker.sock"

_MAX_FRAME = 16 * 1024 * 1024
#: Seconds beyond the request's own timeout before the guest gives up on the host.
_MARGIN = 10.0


class WebError(Exception):
    """A mediated request was refused or failed; ``code`` names why."""

    code = "WebError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EgressDenied(WebError):
    """The destination is not among the app's grants, or not https."""

    code = "EgressDenied"


class SecretNotAllowed(WebError):
    """A secret (its token, or a binding) was asked to go where it may not."""

    code = "SecretNotAllowed"


class Timeout(WebError, TimeoutError):
    """The request did not complete in time."""

    code = "Timeout"


class TooLarge(WebError):
    code = "TooLarge"


class BadRequest(WebError, ValueError):
    code = "BadRequest"


class Upstream(WebError):
    """The destination could not be reached or answered badly (TLS, reset)."""

    code = "Upstream"


class Busy(WebError):
    code = "Busy"


class Unavailable(WebError):
    """No broker here (not in an mvm microVM, or not configured on the host)."""

    code = "Unavailable"


_ERRORS = {c.code: c for c in (EgressDenied, SecretNotAllowed, Timeout, TooLarge, BadRequest, Upstream, Busy, Unavailable)}


class Response:
    """What the destination answered: ``status``, ``headers`` (in order, names
    lowercase), ``body`` (bytes); ``text`` and ``json()`` decode it."""

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (any case), or None."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def __repr__(self) -> str:
        return "<mvm.Response status=%d bytes=%d>" % (self.status, len(self.body))


def web_fetch(
    url: str,
    method: str = "GET",
    headers: Headers = None,
    body: Union[bytes, str, None] = None,
    timeout: Optional[float] = None,
    json: Any = None,
) -> Response:
    """Has the host make an HTTPS request for this guest and returns its answer.

    Put a secret's env var (its opaque token) in a header, e.g.
    ``headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}``;
    the host swaps in the value for a destination the secret is bound to.
    Secrets declared with ``type="bearer"``/``"basic"``/``"header"`` are
    applied by the host without being named. ``json=`` sends a JSON body.
    """
    import base64
    import json as _json

    pairs: List[List[str]] = []
    if headers is not None:
        items = headers.items() if hasattr(headers, "items") else headers
        for k, v in items:
            pairs.append([str(k), str(v)])
    if json is not None:
        if body is not None:
            raise BadRequest("pass body= or json=, not both")
        body = _json.dumps(json).encode()
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(["content-type", "application/json"])
    data = body.encode() if isinstance(body, str) else (body or b"")
    call: Dict[str, Any] = {
        "call": "web_fetch",
        "url": url,
        "method": method.upper(),
        "headers": pairs,
        "body": base64.b64encode(data).decode(),
        "timeout_ms": None if timeout is None else max(1, int(timeout * 1000)),
    }
    out = _call(call, 30.0 if timeout is None else float(timeout))
    return Response(int(out["status"]), [(k, v) for k, v in out["headers"]], base64.b64decode(out["body"]))


def web_search(query: str, max_results: int = 10) -> List[Dict[str, str]]:
    """Searches through the provider the host's operator configured; a list
    of ``{"title", "url", "snippet"}``."""
    out = _call({"call": "web_search", "query": query, "max_results": int(max_results)}, 30.0)
    return [{"title": r["title"], "url": r["url"], "snippet": r["snippet"]} for r in out["results"]]


def _call(call: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    import json as _json
    import socket
    import struct

    path = os.environ.get("MVM_BROKER_SOCKET", GUEST_SOCKET)
    payload = _json.dumps(call).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout + _MARGIN)
        try:
            s.connect(path)
        except OSError as e:
            raise Unavailable("no mvm broker at %s (%s): web_fetch works inside an mvm microVM" % (path, e)) from None
        s.sendall(struct.pack(">I", len(payload)) + payload)
        try:
            head = _read(s, 4)
            (n,) = struct.unpack(">I", head)
            if n > _MAX_FRAME:
                raise Upstream("the broker's answer is %d bytes, over the limit" % n)
            out = _json.loads(_read(s, n))
        except socket.timeout:
            raise Timeout("no answer from the host within %.0fs" % (timeout + _MARGIN)) from None
    finally:
        s.close()
    kind = out.get("outcome")
    if kind == "failed":
        cls = _ERRORS.get(out.get("code"), WebError)
        raise cls(str(out.get("message", "")))
    return out


def _read(s: Any, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = s.recv(min(n, 1 << 20))
        if not chunk:
            raise Unavailable("the broker closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
