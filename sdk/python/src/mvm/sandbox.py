"""The runtime SDK: ``Sandbox.create(...)`` and its operations.

Two modes:

- **Live** (the default): every call goes to the local API, ``mvmctl serve``
  (docs/api.md), which creates and drives real sandboxes. The endpoint is
  ``MVM_API_URL`` (``unix:/path`` or ``http://host:port`` with
  ``MVM_API_TOKEN``), else ``$MVM_HOME/api.sock``, where the server is started
  in the background when nothing answers (``MVM_MVMCTL`` names the binary).
- **Record** (``MVM_SDK_MODE=record``): every call is recorded and the
  recording is written to ``MVM_SDK_OUT_PATH`` when the process exits
  (format: docs/recording.md), for ``mvmctl compile --from-recording``.
  Nothing is executed; calls the recording format cannot hold raise.

``AsyncSandbox`` is the same surface as coroutines.
"""

from __future__ import annotations

import os

from mvm import recording
from mvm.errors import SandboxError
from mvm.helpers import Helper

# http.client, json, base64 and asyncio are imported where they are used:
# `import mvm` in the guest's function runner must stay cheap (tests/test_import.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterator, List, Optional, Union

    from mvm._api import Client

    OnOutput = Optional[Callable[[str], object]]


def _live() -> bool:
    return os.environ.get("MVM_SDK_MODE", "") != "record"


def _client() -> Client:
    from mvm import _api

    return _api.default_client()


def _seg(value: str) -> str:
    from mvm._api import seg

    return seg(value)


def _b64(data: Union[str, bytes]) -> str:
    import base64

    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return base64.b64encode(raw).decode("ascii")


def _str_dict(what: str, value: object) -> Optional[Dict[str, str]]:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SandboxError("%s must be a dict of strings to strings" % what)
    return dict(value)


def _check_cmd(cmd: object) -> None:
    if isinstance(cmd, str):
        if not cmd.strip():
            raise SandboxError("the command line is empty")
    elif not isinstance(cmd, list) or not cmd or not all(isinstance(x, str) for x in cmd) or not cmd[0]:
        raise SandboxError("a command is a shell line or a non-empty list of strings")


def _check_path(what: str, path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise SandboxError("%s needs an absolute guest path, got %r" % (what, path))
    return path


# --- results ---------------------------------------------------------------


class CommandResult:
    """A finished command: its whole output (decoded as UTF-8) and how it ended.

    ``exit_code`` follows the shell (128+N for signal N, 124 on timeout);
    ``signal`` is the signal's name or number when one ended it, else None.
    """

    __slots__ = ("stdout", "stderr", "exit_code", "signal", "timed_out")

    def __init__(self, stdout: str, stderr: str, exit_code: int, signal: object = None, timed_out: bool = False) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.signal = signal
        self.timed_out = timed_out

    def __repr__(self) -> str:
        return "CommandResult(exit_code=%r, signal=%r, timed_out=%r, stdout=%r, stderr=%r)" % (
            self.exit_code, self.signal, self.timed_out, self.stdout[:80], self.stderr[:80])


class SandboxInfo:
    """A sandbox as the API describes it (docs/api.md, "A sandbox object"); ``raw`` is the whole object."""

    __slots__ = ("id", "status", "template", "image_id", "started_by", "created_unix_ms", "timeout",
                 "on_timeout", "expires_unix_ms", "metadata", "envs", "raw")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.id = raw.get("id", "")
        self.status = raw.get("status", "")
        self.template = raw.get("template", "")
        self.image_id = raw.get("image_id")
        self.started_by = raw.get("started_by")
        self.created_unix_ms = raw.get("created_unix_ms")
        self.timeout = raw.get("timeout")
        self.on_timeout = raw.get("on_timeout")
        self.expires_unix_ms = raw.get("expires_unix_ms")
        self.metadata = raw.get("metadata") or {}
        self.envs = raw.get("envs") or {}

    def __repr__(self) -> str:
        return "SandboxInfo(id=%r, status=%r, template=%r)" % (self.id, self.status, self.template)


class EntryInfo:
    """A guest file or directory: ``kind`` is ``file``, ``dir``, ``symlink`` or ``other``.
    ``path`` and ``mode`` are set by ``files.stat`` (``mode`` as the server gives it)."""

    __slots__ = ("name", "kind", "size", "path", "mode")

    def __init__(self, name: str, kind: str, size: int, path: Optional[str] = None, mode: object = None) -> None:
        self.name = name
        self.kind = kind
        self.size = size
        self.path = path
        self.mode = mode

    def __repr__(self) -> str:
        return "EntryInfo(name=%r, kind=%r, size=%r)" % (self.name, self.kind, self.size)


class CommandInfo:
    """A background command as ``commands.list()`` reports it."""

    __slots__ = ("id", "cmd", "running", "exit_code")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.id = raw.get("command_id", "")
        self.cmd = raw.get("cmd")
        self.running = bool(raw.get("running"))
        self.exit_code = raw.get("exit_code")

    def __repr__(self) -> str:
        return "CommandInfo(id=%r, cmd=%r, running=%r, exit_code=%r)" % (self.id, self.cmd, self.running, self.exit_code)


def _collect(events: Iterator[Dict[str, Any]], on_stdout: OnOutput, on_stderr: OnOutput, check: bool,
             cmd: object) -> CommandResult:
    """Turn a command's NDJSON events into a result, feeding the callbacks as they come."""
    import base64
    import codecs

    from mvm.errors import ApiError, CommandExitError, Timeout, api_error

    # Incremental decoders: a UTF-8 character split across two chunks still decodes.
    decoders = {"stdout": codecs.getincrementaldecoder("utf-8")("replace"),
                "stderr": codecs.getincrementaldecoder("utf-8")("replace")}
    parts: Dict[str, List[str]] = {"stdout": [], "stderr": []}
    callbacks = {"stdout": on_stdout, "stderr": on_stderr}
    end: Optional[Dict[str, Any]] = None
    for event in events:
        kind = event.get("type")
        if kind in parts:
            text = decoders[kind].decode(base64.b64decode(event.get("data", "")))
            if text:
                parts[kind].append(text)
                callback = callbacks[kind]
                if callback is not None:
                    callback(text)
        elif kind == "exit":
            end = event
            break
        elif kind == "error":
            err = event.get("error") or {}
            raise api_error(str(err.get("code", "")), str(err.get("message", "")), str(err.get("hint") or ""), 200)
    for kind, decoder in decoders.items():
        text = decoder.decode(b"", final=True)
        if text:
            parts[kind].append(text)
            last = callbacks[kind]
            if last is not None:
                last(text)
    if end is None:
        raise ApiError("E_PROTOCOL", "the output of %r ended without an exit event" % (cmd,),
                       "the server or the sandbox went away; sb.info() shows its status")
    result = CommandResult("".join(parts["stdout"]), "".join(parts["stderr"]), int(end.get("exit_code", -1)),
                           end.get("signal"), bool(end.get("timed_out")))
    if check and result.timed_out:
        raise Timeout("E_TIMEOUT", "%r was killed by its timeout" % (cmd,),
                      "raise timeout= or make the command faster", 0)
    if check and result.exit_code != 0:
        raise CommandExitError("%r exited with status %d: %s" % (cmd, result.exit_code, result.stderr[-500:].strip()),
                               result.stdout, result.stderr, result.exit_code)
    return result


class CommandHandle:
    """What ``commands.start`` (or ``run(background=True)``) returns.

    In record mode the command was only recorded (``recorded`` is True, there
    is no ``id``, output or exit status). In live mode it is running in the
    sandbox: ``wait`` streams its output, ``kill``/``send_stdin``/``close_stdin`` drive it.
    """

    __slots__ = ("cmd", "background", "id", "recorded", "_sandbox")

    def __init__(self, cmd: Union[str, List[str]], background: bool, sandbox: Optional[Sandbox] = None,
                 id: Optional[str] = None) -> None:
        self.cmd = cmd
        self.background = background
        self.id = id
        self.recorded = sandbox is None
        self._sandbox = sandbox

    def __repr__(self) -> str:
        if self.recorded:
            return "CommandHandle(recorded %s%r)" % ("background " if self.background else "", self.cmd)
        return "CommandHandle(id=%r, %r)" % (self.id, self.cmd)

    def _path(self, what: str) -> str:
        if self._sandbox is None:
            raise SandboxError("%s: the command was only recorded (MVM_SDK_MODE=record); nothing runs" % what)
        return "/v1/sandboxes/%s/commands/%s" % (_seg(self._sandbox.id), _seg(self.id or ""))

    def wait(self, on_stdout: OnOutput = None, on_stderr: OnOutput = None, check: bool = False) -> CommandResult:
        """Everything it printed so far, then live, until it exits."""
        path = self._path("wait")
        with self._sandbox._client.open("GET", path) as r:  # type: ignore[union-attr]
            return _collect(r.lines(), on_stdout, on_stderr, check, self.cmd)

    def kill(self, signal: str = "KILL") -> None:
        self._sandbox._client.call("POST", self._path("kill") + "/kill", {"signal": signal})  # type: ignore[union-attr]

    def send_stdin(self, data: Union[str, bytes]) -> None:
        self._sandbox._client.call("POST", self._path("send_stdin") + "/stdin", {"data": _b64(data)})  # type: ignore[union-attr]

    def close_stdin(self) -> None:
        self._sandbox._client.call("POST", self._path("close_stdin") + "/stdin", {"eof": True})  # type: ignore[union-attr]


# --- sandbox.commands / sandbox.files ---------------------------------------


class Commands:
    """``sandbox.commands``: run a command to completion or start one in the background."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def run(
        self,
        cmd: Union[str, List[str]],
        cwd: Optional[str] = None,
        envs: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        stdin: Optional[Union[str, bytes]] = None,
        on_stdout: OnOutput = None,
        on_stderr: OnOutput = None,
        background: bool = False,
        check: bool = False,
    ) -> Any:
        """Run ``cmd`` (a shell line, run by ``/bin/sh -c``, or an argv list) and wait for it.

        Output is streamed: ``on_stdout``/``on_stderr`` get each decoded text
        chunk, in order, as it arrives. Returns a :class:`CommandResult`; with
        ``check=True`` a non-zero exit raises ``CommandExitError`` and a fired
        ``timeout`` raises ``Timeout``. ``background=True`` is :meth:`start`.
        In record mode only ``cmd`` and ``background`` can be recorded
        (callbacks and ``check`` are ignored: nothing runs).
        """
        return self._sandbox._command(cmd, background, cwd, envs, timeout, stdin, on_stdout, on_stderr, check)

    def start(
        self,
        cmd: Union[str, List[str]],
        cwd: Optional[str] = None,
        envs: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        stdin: Optional[Union[str, bytes]] = None,
    ) -> CommandHandle:
        """Start ``cmd`` in the background (e.g. a server); returns its :class:`CommandHandle`."""
        result: CommandHandle = self._sandbox._command(cmd, True, cwd, envs, timeout, stdin, None, None, False)
        return result

    def list(self) -> List[CommandInfo]:
        """The background commands started through this server."""
        sb = self._sandbox._live_only("commands.list")
        answer = sb._client.call("GET", sb._path("/commands"))
        return [CommandInfo(c) for c in answer.get("commands", [])]


class Files:
    """``sandbox.files``: guest files, by absolute path."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def write(self, path: str, data: Any, mode: Optional[Union[int, str]] = None) -> None:
        """Write ``data`` (str is UTF-8 encoded; bytes; or a file-like object, streamed) to ``path``.

        Parents are created and the file is replaced atomically. ``mode`` is
        the permission bits (``0o644`` or ``"644"``).
        """
        self._sandbox._write(path, data, mode)

    def read(self, path: str, format: str = "text") -> Union[str, bytes]:
        """The file's contents: ``format="text"`` (UTF-8, errors replaced) or ``"bytes"``."""
        import io

        if format not in ("text", "bytes"):
            raise SandboxError('files.read format must be "text" or "bytes", got %r' % (format,))
        buf = io.BytesIO()
        self.read_to(path, buf)
        raw = buf.getvalue()
        return raw if format == "bytes" else raw.decode("utf-8", "replace")

    def read_to(self, path: str, fileobj: Any) -> int:
        """Stream the file into ``fileobj`` (anything with ``write(bytes)``); returns the byte count."""
        sb = self._sandbox._live_only("files.read")
        total = 0
        import http.client

        from mvm.errors import ApiError

        with sb._client.open("GET", sb._path("/files"), query={"path": _check_path("files.read", path)}) as r:
            expected = r.resp.getheader("Content-Length")
            try:
                while True:
                    piece = r.read(1 << 20)
                    if not piece:
                        break
                    fileobj.write(piece)
                    total += len(piece)
            except http.client.HTTPException as e:
                raise ApiError("E_API_TRUNCATED", "reading %s was cut short after %d bytes: %s" % (path, total, e),
                                        "the sandbox may have stopped; read it again", 0) from e
            # http.client does not raise on a body shorter than its length.
            if expected is not None and expected.isdigit() and int(expected) != total:
                raise ApiError("E_API_TRUNCATED", "reading %s was cut short: %d of %s bytes" % (path, total, expected),
                                        "the file changed or the sandbox stopped while it was read; read it again", 0)
            return total

    def list(self, path: str) -> List[EntryInfo]:
        """The entries of the directory ``path``."""
        sb = self._sandbox._live_only("files.list")
        answer = sb._client.call("GET", sb._path("/files/list"), query={"path": _check_path("files.list", path)})
        return [EntryInfo(e.get("name", ""), e.get("kind", ""), e.get("size", 0)) for e in answer.get("entries", [])]

    def stat(self, path: str) -> EntryInfo:
        """What ``path`` is; a missing path raises ``FileNotFound``."""
        sb = self._sandbox._live_only("files.stat")
        a = sb._client.call("GET", sb._path("/files/stat"), query={"path": _check_path("files.stat", path)})
        p = a.get("path", path)
        return EntryInfo(p.rstrip("/").rsplit("/", 1)[-1] or "/", a.get("kind", ""), a.get("size", 0), p, a.get("mode"))

    def exists(self, path: str) -> bool:
        from mvm.errors import FileNotFound

        try:
            self.stat(path)
        except FileNotFound:
            return False
        return True

    def remove(self, path: str) -> None:
        """Remove ``path`` (directories recursively)."""
        sb = self._sandbox._live_only("files.remove")
        sb._client.call("DELETE", sb._path("/files"), query={"path": _check_path("files.remove", path)})

    def make_dir(self, path: str) -> None:
        """Create the directory ``path`` with its parents (an existing one is fine)."""
        sb = self._sandbox._live_only("files.make_dir")
        sb._client.call("POST", sb._path("/files/mkdir"), {"path": _check_path("files.make_dir", path)})


# --- the sandbox -----------------------------------------------------------


def _merge_secrets(env: object, secrets: object) -> object:
    """``env`` with each ``secrets`` VAR -> name (or mvm.secret(...)) added as mvm.secret(...)."""
    if secrets is None:
        return env
    from mvm.helpers import secret

    if not isinstance(secrets, dict):
        raise SandboxError("secrets must be a dict of variable names to secret names or mvm.secret(...)")
    merged = dict(env) if isinstance(env, dict) else {}
    if env is not None and not isinstance(env, dict):
        return env  # sandbox_spec reports the bad env
    for var, ref in secrets.items():
        if var in merged:
            raise SandboxError("%r is given both in env and in secrets; keep one" % (var,))
        if isinstance(ref, str):
            merged[var] = secret(ref)
        elif isinstance(ref, Helper) and ref.helper == "secret":
            merged[var] = ref
        else:
            raise SandboxError("secrets[%r] must be a secret name or mvm.secret(...)" % (var,))
    return merged


class Sandbox:
    """One sandbox microVM. Create it with :meth:`Sandbox.create`, or attach with :meth:`connect`."""

    def __init__(self, record: Optional[Dict[str, Any]] = None, *, client: Optional[Client] = None,
                 info: Optional[Dict[str, Any]] = None) -> None:
        self._record = record
        # None only in record mode, where no request is ever made.
        self._client: Client = client  # type: ignore[assignment]
        self._info = SandboxInfo(info or {})
        self._killed = False
        self.commands = Commands(self)
        self.files = Files(self)

    @property
    def id(self) -> str:
        """The instance name (what ``mvmctl ps`` shows); empty in record mode."""
        return str(self._info.id)

    def __repr__(self) -> str:
        return "Sandbox(recorded %r)" % self._record["template"] if self._record is not None else "Sandbox(%r)" % self.id

    @classmethod
    def create(
        cls,
        template: str = "python-3.13",
        env: Optional[Dict[str, Union[str, Helper]]] = None,
        include: Optional[List[str]] = None,
        resources: Optional[Union[Helper, Dict[str, int]]] = None,
        network: Optional[Helper] = None,
        secrets: Optional[Dict[str, Union[str, Helper]]] = None,
        envs: Optional[Dict[str, str]] = None,
        timeout: float = 300,
        on_timeout: str = "kill",
        metadata: Optional[Dict[str, str]] = None,
        id: Optional[str] = None,
    ) -> Sandbox:
        """Create a sandbox from ``template``.

        A base template (``python-3.13``, ``python-3.11``, ``node-22``,
        ``node-20``, ``minimal``) takes ``env`` (strings, ``mvm.literal``,
        ``mvm.secret``), ``secrets`` (VAR -> secret name or ``mvm.secret``),
        ``include`` (globs relative to the script's directory), ``resources``
        and ``network``, exactly as a recording does (docs/recording.md). Any
        other template (a snapshot tag, an image id, a workload's name, a
        compiled directory) carries its own declaration, so those are refused.
        ``envs`` are added to every command's environment; ``timeout`` (s) is
        the TTL, after which the sandbox is killed or, with
        ``on_timeout="pause"``, paused; ``metadata`` is kept with it.
        """
        declared = [n for n, v in (("env", env), ("include", include), ("resources", resources),
                                   ("network", network), ("secrets", secrets)) if v is not None]
        env = _merge_secrets(env, secrets)  # type: ignore[assignment]
        if not _live():
            if envs is not None:
                raise SandboxError("envs= cannot be recorded (MVM_SDK_MODE=record): use env= to put variables "
                                   "into the image")
            # timeout, on_timeout, metadata and id concern the live instance, not the image: ignored.
            spec = recording.sandbox_spec(template, env, include, resources, network)
            recording.session().sandboxes.append(spec)
            return cls(spec)
        if not isinstance(template, str) or not template:
            raise SandboxError("template must be a non-empty string (a base template, snapshot tag, image id, "
                               "workload name or compiled directory), got %r" % (template,))
        body: Dict[str, Any] = {"template": template}
        if template in recording.TEMPLATES:
            spec = recording.sandbox_spec(template, env, include, resources, network)
            del spec["operations"]
            body["recording"] = spec
            # The same root record mode writes: include globs are relative
            # to it. Sent only when something is included: a server reached
            # over TCP refuses host paths.
            if spec["include"]:
                body["source_root"] = recording._script_dir()
        else:
            if declared:
                raise SandboxError(
                    "template %r is not a base template (%s): it carries its own declaration, so %s cannot be "
                    "given; use envs= for per-command variables" % (template, ", ".join(recording.TEMPLATES),
                                                                   ", ".join(declared)))
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise SandboxError("timeout must be a positive number of seconds, got %r" % (timeout,))
        if on_timeout not in ("kill", "pause"):
            raise SandboxError('on_timeout must be "kill" or "pause", got %r' % (on_timeout,))
        body["timeout"] = timeout
        body["on_timeout"] = on_timeout
        for name, value in (("envs", _str_dict("envs", envs)), ("metadata", _str_dict("metadata", metadata))):
            if value is not None:
                body[name] = value
        if id is not None:
            if not isinstance(id, str) or not id:
                raise SandboxError("id must be a non-empty string, got %r" % (id,))
            body["id"] = id
        client = _client()
        return cls(client=client, info=client.call("POST", "/v1/sandboxes", body))

    @classmethod
    def connect(cls, id: str) -> Sandbox:
        """Attach to the existing sandbox ``id`` (``SandboxNotFound`` when there is none)."""
        if not _live():
            raise SandboxError("Sandbox.connect cannot be recorded (MVM_SDK_MODE=record)")
        client = _client()
        return cls(client=client, info=client.call("GET", "/v1/sandboxes/%s" % _seg(id)))

    @classmethod
    def list(cls) -> List[SandboxInfo]:
        """Every sandbox (every mvm instance, the CLI's included)."""
        if not _live():
            raise SandboxError("Sandbox.list cannot be recorded (MVM_SDK_MODE=record)")
        answer = _client().call("GET", "/v1/sandboxes")
        return [SandboxInfo(s) for s in answer.get("sandboxes", [])]

    # --- helpers --------------------------------------------------------

    def _check_alive(self) -> None:
        if self._killed:
            raise SandboxError("this sandbox was killed; create a new one with Sandbox.create(...)")

    def _live_only(self, what: str) -> Sandbox:
        if self._record is not None:
            raise SandboxError("%s cannot be recorded (MVM_SDK_MODE=record): a recording holds only "
                               "commands.run/start, files.write and kill (docs/recording.md)" % what)
        self._check_alive()
        return self

    def _path(self, rest: str = "") -> str:
        return "/v1/sandboxes/%s%s" % (_seg(self.id), rest)

    def _command(self, cmd: Union[str, List[str]], background: bool, cwd: Optional[str] = None,
                 envs: Optional[Dict[str, str]] = None, timeout: Optional[float] = None,
                 stdin: Optional[Union[str, bytes]] = None, on_stdout: OnOutput = None,
                 on_stderr: OnOutput = None, check: bool = False) -> Any:
        self._check_alive()
        if self._record is not None:
            refused = [n for n, v in (("cwd", cwd), ("envs", envs), ("timeout", timeout), ("stdin", stdin))
                       if v is not None]
            if refused:
                raise SandboxError("commands.run %s cannot be recorded (MVM_SDK_MODE=record): a recorded command "
                                   "is only its cmd and background flag (docs/recording.md); put the "
                                   "variables in Sandbox.create(env=...) or `cd`/redirect inside a shell line"
                                   % "/".join(refused))
            self._record["operations"].append(recording.run_op(cmd, background))
            return CommandHandle(cmd, background)
        _check_cmd(cmd)
        body: Dict[str, Any] = {"cmd": cmd if isinstance(cmd, str) else list(cmd), "background": background}
        if cwd is not None:
            body["cwd"] = _check_path("commands.run cwd", cwd)
        if envs is not None:
            body["envs"] = _str_dict("envs", envs)
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                raise SandboxError("timeout must be a positive number of seconds, got %r" % (timeout,))
            body["timeout"] = timeout
        if stdin is not None:
            if not isinstance(stdin, (str, bytes, bytearray)):
                raise SandboxError("stdin must be str or bytes")
            body["stdin"] = _b64(stdin)
        if background:
            answer = self._client.call("POST", self._path("/commands"), body)
            return CommandHandle(cmd, True, self, str(answer["command_id"]))
        with self._client.open("POST", self._path("/commands"), json_body=body) as r:
            return _collect(r.lines(), on_stdout, on_stderr, check, cmd)

    def _write(self, path: str, data: Any, mode: Optional[Union[int, str]] = None) -> None:
        self._check_alive()
        if self._record is not None:
            if mode is not None:
                raise SandboxError("files.write mode= cannot be recorded (MVM_SDK_MODE=record)")
            self._record["operations"].append(recording.write_op(path, data))
            return
        from mvm._api import chunks

        query = {"path": _check_path("files.write", path)}
        if mode is not None:
            if isinstance(mode, bool) or not isinstance(mode, (int, str)):
                raise SandboxError("files.write mode must be an int such as 0o644 or an octal string such as \"644\"")
            query["mode"] = "%o" % mode if isinstance(mode, int) else mode
        with self._client.open("PUT", self._path("/files"), query=query, raw_body=chunks(data)) as r:
            r.resp.read()

    def _update(self, info: Dict[str, Any]) -> SandboxInfo:
        self._info = SandboxInfo(info)
        return self._info

    # --- lifecycle ------------------------------------------------------

    def info(self) -> SandboxInfo:
        """The sandbox as the server sees it now (status, TTL, ...)."""
        return self._update(self._live_only("info")._client.call("GET", self._path()))

    def invoke(self, entrypoint: Optional[str] = None, **args: Any) -> Any:
        """Call the workload's function (``entrypoint``, default its only one) with ``args``; returns its value.

        If the function raises, ``FunctionError`` carries its kind, message and traceback.
        """
        from mvm.errors import FunctionError

        answer = self._live_only("invoke")._client.call("POST", self._path("/invoke"),
                                                        {"entrypoint": entrypoint, "args": args})
        if "function_error" in answer:
            fe = answer["function_error"] or {}
            raise FunctionError(str(fe.get("kind", "")), str(fe.get("message", "")), str(fe.get("traceback") or ""))
        return answer.get("value")

    def snapshot(self, tag: Optional[str] = None) -> str:
        """Snapshot the sandbox; returns the tag (``Sandbox.create(template=tag)`` restores it)."""
        body = {"tag": tag} if tag is not None else {}
        return str(self._live_only("snapshot")._client.call("POST", self._path("/snapshot"), body)["tag"])

    def pause(self) -> SandboxInfo:
        return self._update(self._live_only("pause")._client.call("POST", self._path("/pause"), {}))

    def resume(self) -> SandboxInfo:
        """Resume a paused sandbox; its TTL restarts from now."""
        return self._update(self._live_only("resume")._client.call("POST", self._path("/resume"), {}))

    def fork(self, n: int = 1, timeout: Optional[float] = None) -> List[Sandbox]:
        """``n`` new sandboxes started from a snapshot of this one."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SandboxError("fork needs n >= 1, got %r" % (n,))
        body: Dict[str, Any] = {"count": n}
        if timeout is not None:
            body["timeout"] = timeout
        answer = self._live_only("fork")._client.call("POST", self._path("/fork"), body)
        return [Sandbox(client=self._client, info=s) for s in answer.get("sandboxes", [])]

    def set_timeout(self, seconds: float) -> SandboxInfo:
        """Restart the TTL: the sandbox now expires ``seconds`` from now."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise SandboxError("set_timeout needs a positive number of seconds, got %r" % (seconds,))
        return self._update(self._live_only("set_timeout")._client.call("POST", self._path("/timeout"),
                                                                        {"timeout": seconds}))

    def kill(self) -> None:
        """Stop the sandbox. Killing twice is allowed (and records one kill)."""
        if self._killed:
            return
        if self._record is not None:
            self._killed = True
            self._record["operations"].append({"op": "kill"})
            return
        from mvm.errors import SandboxNotFound

        try:
            self._client.call("DELETE", self._path())
        except SandboxNotFound:
            pass  # already gone (its TTL, or another client): the goal is reached
        self._killed = True

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# --- asyncio ---------------------------------------------------------------


async def _thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args, **kwargs)


class AsyncCommandHandle:
    """:class:`CommandHandle` with coroutine methods."""

    def __init__(self, handle: CommandHandle) -> None:
        self.sync = handle
        self.id = handle.id
        self.cmd = handle.cmd
        self.recorded = handle.recorded

    async def wait(self, on_stdout: OnOutput = None, on_stderr: OnOutput = None, check: bool = False) -> CommandResult:
        result: CommandResult = await _thread(self.sync.wait, on_stdout, on_stderr, check)
        return result

    async def kill(self, signal: str = "KILL") -> None:
        await _thread(self.sync.kill, signal)

    async def send_stdin(self, data: Union[str, bytes]) -> None:
        await _thread(self.sync.send_stdin, data)

    async def close_stdin(self) -> None:
        await _thread(self.sync.close_stdin)


class AsyncCommands:
    def __init__(self, sync: Commands) -> None:
        self.sync = sync

    async def run(self, cmd: Union[str, List[str]], **kwargs: Any) -> Any:
        """As :meth:`Commands.run`; callbacks are plain functions, called from the worker thread."""
        out = await _thread(self.sync.run, cmd, **kwargs)
        return AsyncCommandHandle(out) if isinstance(out, CommandHandle) else out

    async def start(self, cmd: Union[str, List[str]], **kwargs: Any) -> AsyncCommandHandle:
        return AsyncCommandHandle(await _thread(self.sync.start, cmd, **kwargs))

    async def list(self) -> List[CommandInfo]:
        result: List[CommandInfo] = await _thread(self.sync.list)
        return result


class AsyncFiles:
    def __init__(self, sync: Files) -> None:
        self.sync = sync

    async def write(self, path: str, data: Any, mode: Optional[Union[int, str]] = None) -> None:
        await _thread(self.sync.write, path, data, mode)

    async def read(self, path: str, format: str = "text") -> Union[str, bytes]:
        result: Union[str, bytes] = await _thread(self.sync.read, path, format)
        return result

    async def read_to(self, path: str, fileobj: Any) -> int:
        result: int = await _thread(self.sync.read_to, path, fileobj)
        return result

    async def list(self, path: str) -> List[EntryInfo]:
        result: List[EntryInfo] = await _thread(self.sync.list, path)
        return result

    async def stat(self, path: str) -> EntryInfo:
        result: EntryInfo = await _thread(self.sync.stat, path)
        return result

    async def exists(self, path: str) -> bool:
        result: bool = await _thread(self.sync.exists, path)
        return result

    async def remove(self, path: str) -> None:
        await _thread(self.sync.remove, path)

    async def make_dir(self, path: str) -> None:
        await _thread(self.sync.make_dir, path)


class AsyncSandbox:
    """:class:`Sandbox` for asyncio: the same methods, as coroutines.

    Each call runs the blocking client in ``asyncio.to_thread`` rather than
    reimplementing HTTP on asyncio streams: one client, one behaviour, and the
    standard library only. The cost is a worker thread per call in flight
    (the default executor's pool bounds them). Output callbacks
    (``on_stdout``/``on_stderr``) are plain functions, called from that worker
    thread in order; hand data to the loop with ``loop.call_soon_threadsafe``
    if they must touch loop state.
    """

    def __init__(self, sync: Sandbox) -> None:
        self.sync = sync
        self.commands = AsyncCommands(sync.commands)
        self.files = AsyncFiles(sync.files)

    @property
    def id(self) -> str:
        return self.sync.id

    @classmethod
    async def create(cls, template: str = "python-3.13", **kwargs: Any) -> AsyncSandbox:
        """As :meth:`Sandbox.create`."""
        return cls(await _thread(Sandbox.create, template, **kwargs))

    @classmethod
    async def connect(cls, id: str) -> AsyncSandbox:
        return cls(await _thread(Sandbox.connect, id))

    @classmethod
    async def list(cls) -> List[SandboxInfo]:
        result: List[SandboxInfo] = await _thread(Sandbox.list)
        return result

    async def info(self) -> SandboxInfo:
        result: SandboxInfo = await _thread(self.sync.info)
        return result

    async def invoke(self, entrypoint: Optional[str] = None, **args: Any) -> Any:
        return await _thread(self.sync.invoke, entrypoint, **args)

    async def snapshot(self, tag: Optional[str] = None) -> str:
        result: str = await _thread(self.sync.snapshot, tag)
        return result

    async def pause(self) -> SandboxInfo:
        result: SandboxInfo = await _thread(self.sync.pause)
        return result

    async def resume(self) -> SandboxInfo:
        result: SandboxInfo = await _thread(self.sync.resume)
        return result

    async def fork(self, n: int = 1, timeout: Optional[float] = None) -> List[AsyncSandbox]:
        forks: List[Sandbox] = await _thread(self.sync.fork, n, timeout)
        return [AsyncSandbox(s) for s in forks]

    async def set_timeout(self, seconds: float) -> SandboxInfo:
        result: SandboxInfo = await _thread(self.sync.set_timeout, seconds)
        return result

    async def kill(self) -> None:
        await _thread(self.sync.kill)

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()
