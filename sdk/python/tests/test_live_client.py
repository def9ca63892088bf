"""Live mode of ``mvm.Sandbox`` against a PROTOCOL TEST DOUBLE of docs/api.md.

``FakeApi`` below is not mvm: it is a tiny in-process HTTP server (on a unix
socket, or TCP for the token test) that implements just enough of the API
contract to check the client's side of it: NDJSON streamed as it happens,
error bodies mapped to typed exceptions, streamed uploads and downloads,
the bearer token, autostart. The end-to-end tests against the real
``mvmctl serve`` are separate.
"""

import asyncio
import base64
import hashlib
import http.server
import io
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

import mvm
from mvm import _api, errors, recording
from mvm.sandbox import AsyncSandbox, CommandResult, Sandbox

TOKEN = "s3cret-token"


def _b64(raw):
    return base64.b64encode(raw).decode("ascii")


class FakeApi:
    """State of the protocol test double; one per test."""

    def __init__(self):
        self.sandboxes = {}
        self.files = {}
        self.requests = []  # (method, path, json body or None, headers)
        self.uploads = []  # (path, sha256, bytes, transfer-encoding)
        self.first_seen = threading.Event()  # set by the test's on_stdout
        self.seen_before_exit = None
        self.background = {}
        self.stdin = []
        self.counter = 0
        self.require_token = None

    def sandbox(self, sid, template="python-3.13", status="running", **extra):
        sb = {"id": sid, "status": status, "template": template, "image_id": "img1", "started_by": "template",
              "created_unix_ms": 1, "timeout": 300, "on_timeout": "kill", "expires_unix_ms": 300001,
              "metadata": {}, "envs": {}}
        sb.update(extra)
        self.sandboxes[sid] = sb
        return sb


def _handler(api):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass  # unix-socket peers have no address; the tests assert on state instead

        def address_string(self):
            return "test"

        # --- plumbing ---------------------------------------------------

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _json(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status, code, message, hint=""):
            self._json(status, {"error": {"code": code, "message": message, "hint": hint}})

        def _start_stream(self, ctype="application/x-ndjson"):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _event(self, obj):
            self._chunk(json.dumps(obj).encode() + b"\n")

        def _end_stream(self):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_DELETE(self):
            self._route("DELETE")

        # --- the API ----------------------------------------------------

        def _route(self, method):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            parts = url.path.strip("/").split("/")
            if api.require_token and self.headers.get("Authorization") != "Bearer " + api.require_token:
                self._body()
                return self._error(401, "E_API_UNAUTHORIZED", "missing or wrong bearer token", "set MVM_API_TOKEN")
            if method == "PUT":
                return self._upload(parts, query)
            raw = self._body()
            body = json.loads(raw) if raw else None
            api.requests.append((method, url.path, body, dict(self.headers)))
            if parts == ["v1", "health"]:
                return self._json(200, {"server": "mvm", "version": "test", "api": 1})
            if parts[:2] != ["v1", "sandboxes"]:
                return self._error(404, "E_API_ROUTE", "no route %s %s" % (method, url.path))
            if len(parts) == 2:
                if method == "GET":
                    return self._json(200, {"sandboxes": list(api.sandboxes.values())})
                return self._create(body)
            sid = parts[2]
            if sid not in api.sandboxes:
                return self._error(404, "E_SANDBOX_NOT_FOUND", "no instance named `%s`" % sid, "`mvmctl ps` lists instances")
            sb = api.sandboxes[sid]
            rest = parts[3:]
            if not rest:
                if method == "DELETE":
                    del api.sandboxes[sid]
                    return self._json(200, {"id": sid, "killed": True})
                return self._json(200, sb)
            head = rest[0]
            if head in ("pause", "resume"):
                sb["status"] = "paused" if head == "pause" else "running"
                return self._json(200, sb)
            if head == "timeout":
                sb["timeout"] = body["timeout"]
                return self._json(200, sb)
            if head == "snapshot":
                return self._json(200, {"tag": (body or {}).get("tag") or "snap-auto", "bytes": 10})
            if head == "fork":
                kids = [api.sandbox("%s-f%d" % (sid, i)) for i in range(body["count"])]
                return self._json(201, {"tag": "fork-tag", "sandboxes": kids})
            if head == "invoke":
                if body["args"].get("fail"):
                    return self._json(200, {"function_error": {"kind": "ValueError", "message": "bad x",
                                                               "traceback": "Traceback: ..."}})
                return self._json(200, {"value": {"sum": body["args"]["a"] + body["args"]["b"],
                                                  "entrypoint": body["entrypoint"]}})
            if head == "commands":
                return self._commands(sb, rest[1:], method, body)
            if head == "files":
                return self._files(rest[1:], method, query, body)
            return self._error(404, "E_API_ROUTE", "no route")

        def _create(self, body):
            if body["template"] == "no-such-tag":
                return self._error(404, "E_TEMPLATE_NOT_FOUND", "no snapshot, image or base template `no-such-tag`",
                                   "`mvmctl snapshot list`")
            if body["template"] == "refused":
                return self._error(403, "E_POLICY_REFUSED", "policy refuses it", "see policy.toml")
            if body["template"] == "odd-error":
                return self._error(409, "E_SANDBOX_STATE", "paused", "resume it")
            if body["template"] == "garbage":
                data = b"<html>oops</html>"
                self.send_response(502)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return self.wfile.write(data)
            api.counter += 1
            sid = body.get("id") or "sb-%08x" % api.counter
            return self._json(201, api.sandbox(sid, template=body["template"], metadata=body.get("metadata") or {},
                                               envs=body.get("envs") or {}))

        def _commands(self, sb, rest, method, body):
            if not rest and method == "GET":
                return self._json(200, {"commands": [{"command_id": c, "cmd": v["cmd"], "running": not v["done"],
                                                      "exit_code": 0 if v["done"] else None}
                                                     for c, v in api.background.items()]})
            if not rest:
                if sb["status"] == "paused":
                    return self._error(409, "E_SANDBOX_STATE", "sandbox `%s` is paused" % sb["id"], "resume it first")
                if body.get("background"):
                    cid = "c%d" % (len(api.background) + 1)
                    api.background[cid] = {"cmd": body["cmd"], "done": False}
                    return self._json(201, {"command_id": cid})
                return self._run(body)
            cid = rest[0]
            if cid not in api.background:
                return self._error(404, "E_COMMAND_NOT_FOUND", "no command `%s`" % cid)
            if rest[1:] == ["stdin"]:
                api.stdin.append(body)
                return self._json(200, {"sent": len(base64.b64decode(body.get("data", "")))})
            if rest[1:] == ["kill"]:
                api.background[cid]["killed"] = body["signal"]
                return self._json(200, {"signalled": True})
            # wait: what it printed, plus whatever stdin it was sent, echoed.
            self._start_stream()
            self._event({"type": "stdout", "data": _b64(b"started\n")})
            for piece in api.stdin:
                if "data" in piece:
                    self._event({"type": "stdout", "data": piece["data"]})
            api.background[cid]["done"] = True
            self._event({"type": "exit", "exit_code": 0, "signal": None, "timed_out": False})
            self._end_stream()

        def _run(self, body):
            cmd = body["cmd"]
            self._start_stream()
            if cmd == "stream":
                self._event({"type": "stdout", "data": _b64(b"line 1\n")})
                # The client must hand line 1 over while the command still runs.
                api.seen_before_exit = api.first_seen.wait(5)
                self._event({"type": "stderr", "data": _b64(b"warn\n")})
                self._event({"type": "stdout", "data": _b64(b"line 2\n")})
                self._event({"type": "exit", "exit_code": 0, "signal": None, "timed_out": False})
            elif cmd == "utf8-split":
                raw = "héllo ✓\n".encode()
                self._event({"type": "stdout", "data": _b64(raw[:2])})  # cuts é in half
                self._event({"type": "stdout", "data": _b64(raw[2:9])})  # cuts ✓
                self._event({"type": "stdout", "data": _b64(raw[9:])})
                self._event({"type": "stdout", "data": _b64(b"\xff\n")})
                self._event({"type": "exit", "exit_code": 0, "signal": None, "timed_out": False})
            elif cmd == "fail":
                self._event({"type": "stderr", "data": _b64(b"boom\n")})
                self._event({"type": "exit", "exit_code": 3, "signal": None, "timed_out": False})
            elif cmd == "slow":
                self._event({"type": "exit", "exit_code": 124, "signal": "KILL", "timed_out": True})
            elif cmd == "guest-error":
                self._event({"type": "error", "error": {"code": "E_GUEST", "message": "agent lost", "hint": "retry"}})
            elif cmd == "cut":
                self._event({"type": "stdout", "data": _b64(b"partial\n")})
            else:
                # Echo what was asked, so tests can check the request fields.
                echo = {k: body.get(k) for k in ("cmd", "cwd", "envs", "timeout")}
                echo["stdin"] = base64.b64decode(body["stdin"]).decode() if body.get("stdin") else None
                self._event({"type": "stdout", "data": _b64(json.dumps(echo).encode())})
                self._event({"type": "exit", "exit_code": 0, "signal": None, "timed_out": False})
            self._end_stream()

        def _upload(self, parts, query):
            hasher = hashlib.sha256()
            raw = self._body()
            hasher.update(raw)
            path = query["path"]
            api.files[path] = raw
            api.uploads.append((path, hasher.hexdigest(), len(raw), self.headers.get("Transfer-Encoding"),
                                query.get("mode")))
            self._json(200, {"path": path, "size": len(raw)})

        def _files(self, rest, method, query, body):
            path = (body or {}).get("path") or query.get("path")
            if rest == ["mkdir"]:
                api.files[path.rstrip("/") + "/"] = None
                return self._json(200, {"path": path})
            if rest == ["list"]:
                prefix = path.rstrip("/") + "/"
                entries = [{"name": p[len(prefix):], "kind": "file", "size": len(v)}
                           for p, v in sorted(api.files.items()) if v is not None and p.startswith(prefix)]
                return self._json(200, {"path": path, "entries": entries})
            if path not in api.files:
                return self._error(404, "E_FILE_NOT_FOUND", "no such guest path `%s`" % path, "")
            if rest == ["stat"]:
                return self._json(200, {"path": path, "kind": "file", "size": len(api.files[path]), "mode": 0o644})
            if method == "DELETE":
                del api.files[path]
                return self._json(200, {"path": path, "removed": True})
            data = api.files[path]
            self._start_stream("application/octet-stream")
            for i in range(0, len(data), 1 << 20):
                self._chunk(data[i:i + (1 << 20)])
            self._end_stream()

    return Handler


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def _serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def live(tmp_path, monkeypatch):
    """A FakeApi on a unix socket, with MVM_API_URL pointing at it."""
    api = FakeApi()
    sock = str(tmp_path / "api.sock")
    server = _serve(UnixServer(sock, _handler(api)))
    monkeypatch.delenv("MVM_SDK_MODE", raising=False)
    monkeypatch.delenv("MVM_API_TOKEN", raising=False)
    monkeypatch.setenv("MVM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MVM_API_URL", "unix:" + sock)
    yield api
    server.shutdown()
    server.server_close()


# --- create / connect / list / lifecycle -----------------------------------


def test_create_sends_the_recording_of_a_base_template(live):
    sb = Sandbox.create(template="python-3.13", env={"A": "1"}, secrets={"KEY": "openai"}, include=["*.py"],
                        envs={"E": "2"}, timeout=60, on_timeout="pause", metadata={"user": "ari"})
    method, path, body, _ = live.requests[-1]
    assert (method, path) == ("POST", "/v1/sandboxes")
    expected = recording.sandbox_spec("python-3.13", {"A": "1", "KEY": mvm.secret("openai")}, ["*.py"], None, None)
    del expected["operations"]
    assert body["recording"] == json.loads(json.dumps(expected))
    assert body["recording"]["env"]["KEY"]["kind"] == "secret_ref"
    assert body["source_root"] == recording._script_dir()
    assert body["timeout"] == 60 and body["on_timeout"] == "pause"
    assert body["envs"] == {"E": "2"} and body["metadata"] == {"user": "ari"}
    assert sb.id.startswith("sb-") and sb.id in live.sandboxes


def test_create_from_a_snapshot_sends_no_recording_and_refuses_declarations(live):
    sb = Sandbox.create(template="my-snap", id="named")
    body = live.requests[-1][2]
    assert "recording" not in body and "source_root" not in body and body["id"] == "named"
    assert sb.id == "named"
    n = len(live.requests)
    with pytest.raises(mvm.SandboxError, match="not a base template.*env, include"):
        Sandbox.create(template="my-snap", env={"A": "1"}, include=["x"])
    with pytest.raises(mvm.SandboxError, match="both in env and in secrets"):
        Sandbox.create(env={"K": "1"}, secrets={"K": "k"})
    assert len(live.requests) == n  # refused before any request


def test_errors_map_to_typed_exceptions(live):
    with pytest.raises(errors.TemplateNotFound) as e:
        Sandbox.create(template="no-such-tag")
    assert (e.value.code, e.value.status, e.value.hint) == ("E_TEMPLATE_NOT_FOUND", 404, "`mvmctl snapshot list`")
    assert isinstance(e.value, errors.ApiError) and isinstance(e.value, mvm.SandboxError)
    with pytest.raises(errors.PolicyRefused):
        Sandbox.create(template="refused")
    with pytest.raises(errors.ApiError) as e:
        Sandbox.create(template="odd-error")
    assert type(e.value) is errors.ApiError and e.value.code == "E_SANDBOX_STATE" and e.value.status == 409
    with pytest.raises(errors.ApiError, match="HTTP 502 <html>oops"):
        Sandbox.create(template="garbage")
    with pytest.raises(errors.SandboxNotFound, match="no instance named `nope`"):
        Sandbox.connect("nope")
    sb = Sandbox.create()
    with pytest.raises(errors.FileNotFound):
        sb.files.read("/missing")
    with pytest.raises(errors.ApiError) as e:
        sb.commands.run("guest-error")
    assert e.value.code == "E_GUEST" and "agent lost" in str(e.value) and "hint: retry" in str(e.value)
    with pytest.raises(errors.ApiError, match="ended without an exit event"):
        sb.commands.run("cut")


def test_lifecycle_calls(live):
    sb = Sandbox.create()
    assert [s.id for s in Sandbox.list()] == [sb.id]
    assert Sandbox.connect(sb.id).info().status == "running"
    assert sb.pause().status == "paused"
    with pytest.raises(errors.ApiError, match="paused"):
        sb.commands.run("echo")
    assert sb.resume().status == "running"
    assert sb.set_timeout(600).timeout == 600
    assert sb.snapshot("t1") == "t1" and sb.snapshot() == "snap-auto"
    forks = sb.fork(2)
    assert [f.id for f in forks] == [sb.id + "-f0", sb.id + "-f1"]
    assert sb.invoke("main", a=2, b=3) == {"sum": 5, "entrypoint": "main"}
    with pytest.raises(mvm.FunctionError) as e:
        sb.invoke(fail=True, a=0, b=0)
    assert (e.value.kind, e.value.message, e.value.traceback) == ("ValueError", "bad x", "Traceback: ...")
    with sb:
        pass
    assert sb.id not in live.sandboxes
    sb.kill()  # idempotent: no second request
    assert sum(1 for r in live.requests if r[0] == "DELETE") == 1
    with pytest.raises(mvm.SandboxError, match="was killed"):
        sb.files.exists("/x")
    other = Sandbox.connect(forks[0].id)
    del live.sandboxes[forks[0].id]  # gone behind our back (TTL)
    other.kill()  # a 404 on kill is not an error


# --- commands ---------------------------------------------------------------


def test_output_is_delivered_while_the_command_runs(live):
    sb = Sandbox.create()
    got = []

    def on_stdout(text):
        got.append(("out", text))
        live.first_seen.set()

    result = sb.commands.run("stream", on_stdout=on_stdout, on_stderr=lambda t: got.append(("err", t)))
    assert live.seen_before_exit is True, "line 1 reached on_stdout only after the command ended"
    assert got == [("out", "line 1\n"), ("err", "warn\n"), ("out", "line 2\n")]
    assert isinstance(result, CommandResult)
    assert (result.stdout, result.stderr, result.exit_code, result.timed_out) == ("line 1\nline 2\n", "warn\n", 0, False)


def test_output_decoding_survives_split_characters(live):
    pieces = []
    result = Sandbox.create().commands.run("utf8-split", on_stdout=pieces.append)
    assert result.stdout == "héllo ✓\n\ufffd\n"
    assert "".join(pieces) == result.stdout


def test_command_fields_exit_codes_and_check(live):
    sb = Sandbox.create()
    echo = json.loads(sb.commands.run(["ls", "-l"], cwd="/app", envs={"A": "1"}, timeout=5, stdin="hi").stdout)
    assert echo == {"cmd": ["ls", "-l"], "cwd": "/app", "envs": {"A": "1"}, "timeout": 5, "stdin": "hi"}
    result = sb.commands.run("fail")
    assert (result.exit_code, result.stderr) == (3, "boom\n")
    with pytest.raises(mvm.CommandExitError) as e:
        sb.commands.run("fail", check=True)
    assert (e.value.exit_code, e.value.stderr, e.value.stdout) == (3, "boom\n", "")
    slow = sb.commands.run("slow")
    assert (slow.exit_code, slow.signal, slow.timed_out) == (124, "KILL", True)
    with pytest.raises(errors.Timeout):
        sb.commands.run("slow", check=True)
    with pytest.raises(mvm.SandboxError, match="absolute guest path"):
        sb.commands.run("ls", cwd="rel")
    with pytest.raises(mvm.SandboxError, match="non-empty list"):
        sb.commands.run([])


def test_background_commands(live):
    sb = Sandbox.create()
    handle = sb.commands.start("server")
    assert handle.id == "c1" and not handle.recorded
    assert sb.commands.run("server", background=True).id == "c2"
    assert [(c.id, c.running) for c in sb.commands.list()] == [("c1", True), ("c2", True)]
    handle.send_stdin("ping\n")
    handle.close_stdin()
    assert live.stdin == [{"data": _b64(b"ping\n")}, {"eof": True}]
    seen = []
    result = handle.wait(on_stdout=seen.append)
    assert result.stdout == "started\nping\n" and seen == ["started\n", "ping\n"]
    handle.kill("TERM")
    assert live.background["c1"]["killed"] == "TERM"
    with pytest.raises(errors.ApiError) as e:
        type(handle)("x", True, sb, "c99").wait()
    assert e.value.code == "E_COMMAND_NOT_FOUND"


def test_several_sandboxes_from_several_threads(live):
    boxes = [Sandbox.create() for _ in range(4)]
    results, failures = {}, []

    def work(sb):
        try:
            for i in range(5):
                out = sb.commands.run("echo %s %d" % (sb.id, i)).stdout
                results.setdefault(sb.id, []).append(json.loads(out)["cmd"])
        except Exception as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(sb,)) for sb in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures
    assert {k: v for k, v in results.items()} == {sb.id: ["echo %s %d" % (sb.id, i) for i in range(5)] for sb in boxes}


# --- files -----------------------------------------------------------------


class CountingReader(io.RawIOBase):
    """A file-like that records how it is read, to prove the upload is streamed."""

    def __init__(self, data):
        self.src = io.BytesIO(data)
        self.sizes = []

    def read(self, n=-1):
        self.sizes.append(n)
        return self.src.read(n)


def test_upload_and_download_20_mb_streamed(live):
    sb = Sandbox.create()
    data = os.urandom(20 * 1024 * 1024)
    reader = CountingReader(data)
    sb.files.write("/data/big.bin", reader, mode=0o600)
    path, digest, size, encoding, mode = live.uploads[-1]
    assert (path, size, digest) == ("/data/big.bin", len(data), hashlib.sha256(data).hexdigest())
    assert encoding == "chunked" and mode == "600"
    assert len(reader.sizes) > 100 and max(reader.sizes) <= _api.CHUNK  # read piecewise, never whole
    out = hashlib.sha256()

    class Sink:
        writes = 0

        def write(self, b):
            Sink.writes += 1
            out.update(b)

    assert sb.files.read_to("/data/big.bin", Sink()) == len(data)
    assert out.hexdigest() == hashlib.sha256(data).hexdigest() and Sink.writes > 1


def test_small_files(live):
    sb = Sandbox.create()
    sb.files.write("/app/a.txt", "héllo")
    sb.files.write("/app/b.bin", b"\x00\x01")
    sb.files.write("/app/c.txt", io.StringIO("text file-like ✓"))
    assert live.uploads[0][3] is None  # bytes go with a Content-Length
    assert sb.files.read("/app/a.txt") == "héllo"
    assert sb.files.read("/app/b.bin", format="bytes") == b"\x00\x01"
    assert sb.files.read("/app/c.txt") == "text file-like ✓"
    assert [(e.name, e.kind, e.size) for e in sb.files.list("/app")] == [
        ("a.txt", "file", 6), ("b.bin", "file", 2), ("c.txt", "file", 18)]
    info = sb.files.stat("/app/a.txt")
    assert (info.name, info.path, info.size, info.mode) == ("a.txt", "/app/a.txt", 6, 0o644)
    assert sb.files.exists("/app/a.txt") and not sb.files.exists("/app/zzz")
    sb.files.remove("/app/a.txt")
    assert not sb.files.exists("/app/a.txt")
    sb.files.make_dir("/app/sub")
    assert live.requests[-1][1:3] == ("/v1/sandboxes/%s/files/mkdir" % sb.id, {"path": "/app/sub"})
    with pytest.raises(mvm.SandboxError, match="absolute guest path"):
        sb.files.write("rel.txt", "x")
    with pytest.raises(mvm.SandboxError, match='"text" or "bytes"'):
        sb.files.read("/app/b.bin", format="json")


# --- asyncio ------------------------------------------------------------------


def test_async_sandbox(live):
    async def main():
        seen = []
        async with await AsyncSandbox.create(metadata={"k": "v"}) as sb:
            result = await sb.commands.run("fail", on_stderr=seen.append)
            await sb.files.write("/x.txt", "async")
            text = await sb.files.read("/x.txt")
            handle = await sb.commands.start("server")
            waited = await handle.wait()
            return sb.id, result.exit_code, seen, text, waited.stdout, [s.id for s in await AsyncSandbox.list()]

    sid, code, seen, text, waited, ids = asyncio.run(main())
    assert (code, seen, text, waited, ids) == (3, ["boom\n"], "async", "started\n", [sid])
    assert sid not in live.sandboxes  # killed on leaving `async with`


# --- endpoint, token, autostart -------------------------------------------


def test_bearer_token_over_tcp(monkeypatch, tmp_path):
    api = FakeApi()
    api.require_token = TOKEN
    server = _serve(TCPServer(("127.0.0.1", 0), _handler(api)))
    try:
        monkeypatch.delenv("MVM_SDK_MODE", raising=False)
        monkeypatch.setenv("MVM_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("MVM_API_URL", "http://127.0.0.1:%d" % server.server_address[1])
        monkeypatch.setenv("MVM_API_TOKEN", "wrong")
        with pytest.raises(errors.Unauthorized) as e:
            Sandbox.list()
        assert e.value.status == 401 and e.value.hint == "set MVM_API_TOKEN"
        monkeypatch.setenv("MVM_API_TOKEN", TOKEN)
        sb = Sandbox.create()
        assert sb.commands.run("stream", on_stdout=lambda t: api.first_seen.set()).exit_code == 0
        assert api.requests[-1][3]["Authorization"] == "Bearer " + TOKEN
        # Without MVM_API_TOKEN the token file the server keeps in MVM_HOME is used.
        monkeypatch.delenv("MVM_API_TOKEN")
        (tmp_path / "home").mkdir()
        (tmp_path / "home" / "api-token").write_text(TOKEN + "\n")
        assert [s.id for s in Sandbox.list()] == [sb.id]
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_url_is_server_unavailable(monkeypatch, tmp_path):
    monkeypatch.delenv("MVM_SDK_MODE", raising=False)
    monkeypatch.setenv("MVM_API_URL", "unix:" + str(tmp_path / "nobody.sock"))
    monkeypatch.setenv("MVM_MVMCTL", str(tmp_path / "must-not-run"))
    with pytest.raises(errors.ServerUnavailable, match="nothing answers at MVM_API_URL=unix:.*nobody.sock"):
        Sandbox.list()
    monkeypatch.setenv("MVM_API_URL", "ftp://x")
    with pytest.raises(mvm.SandboxError, match="is not `unix:"):
        Sandbox.list()


def test_a_server_that_accepts_and_never_answers_fails_the_health_check_in_time(tmp_path):
    import socket

    path = str(tmp_path / "hung.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    try:
        client = _api.Client(url="unix:" + path)
        t = time.monotonic()
        assert client._healthy() is False
        took = time.monotonic() - t
        assert took < _api.HEALTH_TIMEOUT + 3, took
    finally:
        listener.close()


def test_autostart_names_a_missing_binary(monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.delenv("MVM_SDK_MODE", raising=False)
    monkeypatch.delenv("MVM_API_URL", raising=False)
    monkeypatch.setenv("MVM_HOME", str(home))
    monkeypatch.setenv("MVM_MVMCTL", str(tmp_path / "no" / "mvmctl"))
    with pytest.raises(mvm.SandboxError) as e:
        Sandbox.create()
    text = str(e.value)
    assert str(tmp_path / "no" / "mvmctl") in text and "was not found" in text
    assert "cargo build --release -p mvmctl" in text and "MVM_MVMCTL" in text and "mvmctl doctor" in text
    assert str(home / "api.sock") in text
    assert not home.exists()  # nothing is left behind


FAKE_MVMCTL = """#!{python}
# A stand-in for `mvmctl serve`: answers /v1/health on $MVM_HOME/api.sock.
import http.server, os, socketserver, sys
assert sys.argv[1:] == ["serve"], sys.argv
home = os.environ["MVM_HOME"]
open(os.path.join(home, "fake.pid"), "w").write(str(os.getpid()))
sys.stderr.write("fake serve starting\\n")
class H(http.server.BaseHTTPRequestHandler):
    def address_string(self):
        return "peer"
    def do_GET(self):
        body = b'{{"server": "mvm", "version": "fake", "api": 1}}' if self.path == "/v1/health" else b'{{"sandboxes": []}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
S(os.path.join(home, "api.sock"), H).serve_forever()
"""


def test_autostart_starts_the_server_once(monkeypatch, tmp_path):
    home = tmp_path / "home"
    fake = tmp_path / "mvmctl"
    fake.write_text(FAKE_MVMCTL.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.delenv("MVM_SDK_MODE", raising=False)
    monkeypatch.delenv("MVM_API_URL", raising=False)
    monkeypatch.setenv("MVM_HOME", str(home))
    monkeypatch.setenv("MVM_MVMCTL", str(fake))
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(Sandbox.list())) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert results == [[], [], []]
        # One server for three racing threads, its stderr in the log.
        assert (home / "api.log").read_text().count("fake serve starting") == 1
    finally:
        pid_file = home / "fake.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 9)


def test_mvm_home_mirrors_the_runtime(monkeypatch):
    monkeypatch.setenv("MVM_HOME", "/a")
    monkeypatch.setenv("XDG_DATA_HOME", "/x")
    monkeypatch.setenv("HOME", "/h")
    assert _api.mvm_home() == "/a"
    monkeypatch.setenv("MVM_HOME", "")
    assert _api.mvm_home() == "/x/mvm"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert _api.mvm_home() == "/h/.local/share/mvm"


# --- record mode keeps its format --------------------------------------------


def test_record_mode_refuses_what_a_recording_cannot_hold(tmp_path):
    script = tmp_path / "s.py"
    out = tmp_path / "rec.json"
    env = dict(os.environ, MVM_SDK_MODE="record", MVM_SDK_OUT_PATH=str(out))

    def run(code):
        script.write_text("from mvm import Sandbox\n" + code)
        return subprocess.run([sys.executable, str(script)], env=env, capture_output=True)

    proc = run("sb = Sandbox.create(secrets={'K': 'k'}, timeout=9)\n"
               "h = sb.commands.run('ls', on_stdout=print, check=True)\n"
               "sb.commands.run('srv', background=True)\nprint(h.recorded, h.id)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"True None\n"
    rec = json.loads(out.read_text())["sandboxes"][0]
    assert rec["env"]["K"]["kind"] == "secret_ref"
    assert rec["operations"] == [{"op": "run", "cmd": "ls", "background": False},
                                 {"op": "run", "cmd": "srv", "background": True}]
    proc = run("Sandbox.create().commands.run('ls', cwd='/app')\n")
    assert proc.returncode == 1 and b"cwd cannot be recorded" in proc.stderr
    proc = run("Sandbox.create(envs={'A': '1'})\n")
    assert proc.returncode == 1 and b"envs= cannot be recorded" in proc.stderr
    proc = run("Sandbox.create().files.read('/x')\n")
    assert proc.returncode == 1 and b"files.read cannot be recorded" in proc.stderr


def test_a_download_cut_short_is_an_error_not_a_short_file(tmp_path, monkeypatch):
    # A raw server that promises 10 bytes and sends 5, then closes.
    import socket
    import threading

    from mvm import _api
    from mvm.errors import ApiError

    path = str(tmp_path / "short.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.recv(65536)
            if True:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nhello")
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("MVM_API_URL", "unix:" + path)
    monkeypatch.delenv("MVM_SDK_MODE", raising=False)
    sb = mvm.Sandbox(client=_api.Client(), info={"id": "sb-1", "status": "running"})
    with pytest.raises(ApiError) as e:
        sb.files.read("/app/x", format="bytes")
    assert "cut short" in str(e.value)
    srv.close()


def test_the_local_token_is_not_sent_to_another_host(tmp_path, monkeypatch):
    from mvm import _api

    home = tmp_path / "home"
    home.mkdir()
    (home / "api-token").write_text("local-secret-token")
    monkeypatch.setenv("MVM_HOME", str(home))
    monkeypatch.delenv("MVM_API_TOKEN", raising=False)
    assert _api.Client(url="http://127.0.0.1:7878").token == "local-secret-token"
    assert _api.Client(url="http://shared-box.example:7878").token == ""
