"""The runtime SDK: ``Sandbox.create(...)`` and its operations.

Only record mode exists so far: with ``MVM_SDK_MODE=record`` every call is
recorded and the recording is written to ``MVM_SDK_OUT_PATH`` when the
process exits (format: docs/recording.md), for
``mvmctl compile --from-recording``. Nothing is executed in record mode.
"""

from __future__ import annotations

import os

from mvm import recording
from mvm.errors import SandboxError
from mvm.helpers import Helper

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Union


class CommandHandle:
    """What ``commands.run``/``start`` return in record mode: the command was recorded, not run."""

    __slots__ = ("cmd", "background")
    # Record mode runs nothing, so there is no output or exit status to report.
    recorded = True

    def __init__(self, cmd: Union[str, List[str]], background: bool) -> None:
        self.cmd = cmd
        self.background = background

    def __repr__(self) -> str:
        return "CommandHandle(recorded %s%r)" % ("background " if self.background else "", self.cmd)


class Commands:
    """``sandbox.commands``: run a command to completion or start one in the background."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def run(self, cmd: Union[str, List[str]]) -> CommandHandle:
        """Run ``cmd`` (a shell line or an argv list) and wait for it."""
        return self._sandbox._command(cmd, background=False)

    def start(self, cmd: Union[str, List[str]]) -> CommandHandle:
        """Start ``cmd`` in the background (e.g. a server)."""
        return self._sandbox._command(cmd, background=True)


class Files:
    """``sandbox.files``: put files into the sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def write(self, path: str, data: Union[str, bytes]) -> None:
        """Write ``data`` (text is UTF-8 encoded) to the absolute guest ``path``."""
        self._sandbox._write(path, data)


class Sandbox:
    """One sandbox microVM. Create it with :meth:`Sandbox.create`."""

    def __init__(self, record: Dict[str, Any]) -> None:
        self._record = record
        self._killed = False
        self.commands = Commands(self)
        self.files = Files(self)

    @classmethod
    def create(
        cls,
        template: str = "python-3.13",
        env: Optional[Dict[str, Union[str, Helper]]] = None,
        include: Optional[List[str]] = None,
        resources: Optional[Union[Helper, Dict[str, int]]] = None,
        network: Optional[Helper] = None,
    ) -> Sandbox:
        """Create a sandbox from ``template`` (see docs/recording.md for the allowed values)."""
        mode = os.environ.get("MVM_SDK_MODE", "")
        if mode != "record":
            raise SandboxError(
                "the runtime SDK's live mode is not available yet (MVM_SDK_MODE=%r); "
                "run this script with MVM_SDK_MODE=record (mvmctl compile --from-recording) "
                "or manage instances with mvmctl up / exec / down" % mode
            )
        spec = recording.sandbox_spec(template, env, include, resources, network)
        recording.session().sandboxes.append(spec)
        return cls(spec)

    def _check_alive(self) -> None:
        if self._killed:
            raise SandboxError("this sandbox was killed; create a new one with Sandbox.create(...)")

    def _command(self, cmd: Union[str, List[str]], background: bool) -> CommandHandle:
        self._check_alive()
        self._record["operations"].append(recording.run_op(cmd, background))
        return CommandHandle(cmd, background)

    def _write(self, path: str, data: Union[str, bytes]) -> None:
        self._check_alive()
        self._record["operations"].append(recording.write_op(path, data))

    def kill(self) -> None:
        """Stop the sandbox. Killing twice is allowed and records one kill."""
        if not self._killed:
            self._killed = True
            self._record["operations"].append({"op": "kill"})

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
