"""The HTTP client of the local API (``mvmctl serve``, docs/api.md).

Standard library only. One connection per request: the client holds no
socket between calls, so several sandboxes can be driven from several
threads through one ``Client`` (the only shared state is the autostart lock).

Imported lazily by ``mvm.sandbox``: ``import mvm`` must not load http.client,
json or subprocess (tests/test_import.py).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

from mvm.errors import ApiError, SandboxError, ServerUnavailable, api_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Dict, Iterator, Optional, Tuple, Union

#: Seconds one ``GET /v1/health`` may take before the server counts as not answering.
HEALTH_TIMEOUT = 2.0

#: Seconds to wait for a server started here to answer ``GET /v1/health``.
AUTOSTART_WAIT = 10.0
#: Seconds to wait for a connection; reads then wait as long as the call takes
#: (a command may run for hours, streaming nothing).
CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024

BUILD_HINT = (
    "build it with `cargo build --release -p mvmctl` and put target/release on PATH, "
    "or set MVM_MVMCTL; `mvmctl doctor` checks QEMU and the kernel"
)


def mvm_home() -> str:
    """``$MVM_HOME``; mirrors ``mvm_runtime::home::mvm_home`` exactly."""
    home = os.environ.get("MVM_HOME", "")
    if home:
        return home
    data = os.environ.get("XDG_DATA_HOME", "")
    if data:
        return os.path.join(data, "mvm")
    return os.path.join(os.environ.get("HOME") or "/", ".local/share/mvm")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; ``host`` only fills the Host header."""

    def __init__(self, path: str, timeout: float = CONNECT_TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout, blocksize=CHUNK)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self.sock = sock


class TCPConnection(http.client.HTTPConnection):
    """Plain HTTP over TCP with a connect timeout but no read timeout."""

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(None)


class Response:
    """An open streaming answer; close it (or use ``with``) when done."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self.status = resp.status

    def lines(self) -> Iterator[Dict[str, Any]]:
        """NDJSON events, each yielded as soon as its line has arrived."""
        while True:
            line = self.resp.readline()
            if not line:
                return
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except ValueError:
                    raise ApiError("E_PROTOCOL", "the server sent a line that is not JSON: %r" % line[:200],
                                   "is MVM_API_URL pointing at `mvmctl serve`?", self.status) from None

    def read(self, n: int = CHUNK) -> bytes:
        return self.resp.read(n)

    def close(self) -> None:
        self.resp.close()
        self.conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """Where the API is and how to call it (see docs/api.md, "Where it listens")."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None) -> None:
        url = url if url is not None else os.environ.get("MVM_API_URL", "")
        self.token = token if token is not None else os.environ.get("MVM_API_TOKEN", "")
        self.autostart = not url
        self._lock = threading.Lock()
        if not url:
            self.unix_path: Optional[str] = os.path.join(mvm_home(), "api.sock")
            self.address = "unix:" + self.unix_path
            return
        self.address = url
        if url.startswith("unix:"):
            self.unix_path = url[len("unix:"):]
            if self.unix_path.startswith("//"):
                self.unix_path = self.unix_path[2:]
            if not self.unix_path:
                raise SandboxError("MVM_API_URL=%r names no socket; use unix:/path/to/api.sock" % url)
            return
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise SandboxError(
                "MVM_API_URL=%r is not `unix:/path/to/api.sock` or `http://host:port`" % url
            )
        self.unix_path = None
        self.host = parts.hostname
        self.port = parts.port or 80
        if not self.token and self.host in ("127.0.0.1", "localhost", "::1"):
            # The server keeps the token there; reading it saves setting
            # MVM_API_TOKEN on this machine. Only for this machine: the
            # local token is never sent to another host.
            try:
                with open(os.path.join(mvm_home(), "api-token"), encoding="utf-8") as f:
                    self.token = f.read().strip()
            except OSError:
                pass

    # --- connections -------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self.unix_path is not None:
            return UnixHTTPConnection(self.unix_path)
        return TCPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT, blocksize=CHUNK)

    def _connect(self) -> http.client.HTTPConnection:
        """A connected connection, starting the server first when it is ours to start."""
        conn = self._connection()
        try:
            conn.connect()
            return conn
        except OSError as e:
            conn.close()
            if not self.autostart:
                raise ServerUnavailable(
                    "E_SERVER_UNAVAILABLE",
                    "nothing answers at MVM_API_URL=%s (%s)" % (self.address, e),
                    "start it with `mvmctl serve` (add `--listen HOST:PORT` for TCP), or unset MVM_API_URL "
                    "to use (and autostart) the default socket",
                ) from None
        self.ensure_server()
        conn = self._connection()
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            raise ServerUnavailable(
                "E_SERVER_UNAVAILABLE",
                "the API server at %s stopped answering (%s)" % (self.address, e),
                "see %s" % os.path.join(mvm_home(), "api.log"),
            ) from None
        return conn

    def _healthy(self) -> bool:
        conn = self._connection()
        try:
            conn.timeout = HEALTH_TIMEOUT
            conn.request("GET", "/v1/health", headers=self._headers())
            # Connections drop their timeout once connected (answers may
            # stream for as long as a command runs); a health check must
            # not wait on a server that accepted and then hung.
            if conn.sock is not None:
                conn.sock.settimeout(HEALTH_TIMEOUT)
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def ensure_server(self) -> None:
        """Start ``mvmctl serve`` when nothing answers on the default socket."""
        import subprocess

        with self._lock:
            if self._healthy():
                return
            import shutil

            home = mvm_home()
            binary = os.environ.get("MVM_MVMCTL", "") or "mvmctl"
            # Checked first so a missing binary leaves no MVM_HOME or log behind.
            if shutil.which(binary) is None:
                raise ServerUnavailable(
                    "E_SERVER_UNAVAILABLE",
                    "nothing answers on %s and the API server could not be started: `%s` was not found "
                    "or is not executable" % (self.unix_path, binary),
                    BUILD_HINT + "; or run the script with MVM_SDK_MODE=record to only record it",
                )
            try:
                os.makedirs(home, mode=0o700, exist_ok=True)
                log_path = os.path.join(home, "api.log")
                log = open(log_path, "ab")
            except OSError as e:
                raise ServerUnavailable(
                    "E_SERVER_UNAVAILABLE", "cannot prepare %s to start the API server: %s" % (home, e),
                    "set MVM_HOME to a writable directory",
                ) from None
            try:
                proc = subprocess.Popen(
                    [binary, "serve"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as e:
                missing = isinstance(e, (FileNotFoundError, PermissionError, NotADirectoryError))
                raise ServerUnavailable(
                    "E_SERVER_UNAVAILABLE",
                    "nothing answers on %s and the API server could not be started: `%s` %s (%s)"
                    % (self.unix_path, binary, "was not found or is not executable" if missing else "failed", e),
                    BUILD_HINT + "; or run the script with MVM_SDK_MODE=record to only record it",
                ) from None
            finally:
                log.close()
            deadline = time.monotonic() + AUTOSTART_WAIT
            while time.monotonic() < deadline:
                if self._healthy():
                    return
                if proc.poll() is not None:
                    raise ServerUnavailable(
                        "E_SERVER_UNAVAILABLE",
                        "`%s serve` exited with status %s before answering on %s" % (binary, proc.returncode, self.unix_path),
                        "its log is %s: %s" % (log_path, _tail(log_path)),
                    )
                time.sleep(0.1)
            raise ServerUnavailable(
                "E_SERVER_UNAVAILABLE",
                "`%s serve` did not answer on %s within %.0f s" % (binary, self.unix_path, AUTOSTART_WAIT),
                "its log is %s; `mvmctl doctor` checks the host" % log_path,
            )

    # --- requests ----------------------------------------------------------

    def _headers(self, content_type: Optional[str] = None) -> Dict[str, str]:
        headers = {"Accept": "application/json, application/x-ndjson, application/octet-stream"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def open(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, str]] = None,
        json_body: Any = None,
        raw_body: Any = None,
    ) -> Response:
        """Send one request; answers 2xx stay open for streaming, others raise their typed error."""
        url = path + ("?" + urlencode(query) if query else "")
        if raw_body is not None:
            headers = self._headers("application/octet-stream")
            body = raw_body
        elif json_body is not None:
            headers = self._headers("application/json")
            body = json.dumps(json_body).encode("utf-8")
        else:
            headers = self._headers()
            body = None
        conn = self._connect()
        try:
            # http.client sends bytes with a Content-Length and an iterable (uploads) chunked.
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise ServerUnavailable(
                "E_SERVER_UNAVAILABLE", "%s %s at %s failed: %s" % (method, path, self.address, e),
                "is `mvmctl serve` still running? see %s" % os.path.join(mvm_home(), "api.log"),
            ) from None
        if 200 <= resp.status < 300:
            return Response(conn, resp)
        try:
            raise _error_from(resp, method, path)
        finally:
            conn.close()

    def call(self, method: str, path: str, json_body: Any = None, query: Optional[Dict[str, str]] = None) -> Any:
        """A JSON request answered by a JSON body."""
        with self.open(method, path, query=query, json_body=json_body) as r:
            data = r.resp.read()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError("E_PROTOCOL", "%s %s answered with a body that is not JSON: %r" % (method, path, data[:200]),
                           "is %s `mvmctl serve`?" % self.address, r.status) from None


def _error_from(resp: http.client.HTTPResponse, method: str, path: str) -> ApiError:
    data = resp.read()
    try:
        err = json.loads(data)["error"]
        return api_error(str(err.get("code", "")), str(err.get("message", "")), str(err.get("hint") or ""), resp.status)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = data[:300].decode("utf-8", "replace")
        return ApiError("E_HTTP_%d" % resp.status, "%s %s: HTTP %d %s" % (method, path, resp.status, text),
                        "", resp.status)


def _tail(path: str, n: int = 800) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace").strip() or "(empty)"
    except OSError:
        return "(unreadable)"


def chunks(data: Any) -> Union[bytes, Iterator[bytes]]:
    """An upload body: bytes as they are, a file-like read in CHUNK pieces (text is UTF-8 encoded)."""
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if not hasattr(data, "read"):
        raise SandboxError("files.write data must be str, bytes or a file-like object, got %s" % type(data).__name__)

    def gen() -> Iterator[bytes]:
        while True:
            piece = data.read(CHUNK)
            if not piece:
                return
            yield piece.encode("utf-8") if isinstance(piece, str) else bytes(piece)

    return gen()


def seg(value: str) -> str:
    """One path segment (a sandbox or command id), escaped."""
    return quote(value, safe="")


_default: Optional[Client] = None
_default_key: Optional[Tuple[str, str, str]] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process's client, rebuilt when MVM_API_URL / MVM_API_TOKEN / MVM_HOME change (tests do)."""
    global _default, _default_key
    key = (os.environ.get("MVM_API_URL", ""), os.environ.get("MVM_API_TOKEN", ""), mvm_home())
    with _default_lock:
        if _default is None or _default_key != key:
            _default = Client()
            _default_key = key
        return _default
