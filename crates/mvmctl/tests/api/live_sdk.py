"""The Python SDK in live mode against a real `mvmctl serve` (run by
tests/api_vm.rs with MVM_API_URL set). Each check asserts; the last line
printed is a JSON summary the Rust test reads (timings, sizes)."""

import hashlib
import json
import os
import sys
import threading
import time

import mvm
from mvm import Sandbox
from mvm.errors import CommandExitError, FileNotFound, SandboxNotFound

summary = {}

t = time.monotonic()
sb = Sandbox.create(template="python-3.13", envs={"FROM_CREATE": "yes"}, metadata={"test": "live"}, timeout=600)
summary["create_base_s"] = time.monotonic() - t
assert sb.info().status == "running", sb.info()
assert any(s.id == sb.id for s in Sandbox.list())

r = sb.commands.run("echo $FROM_CREATE $X; echo oops >&2; exit 3", envs={"X": "per-call"})
assert (r.stdout, r.stderr, r.exit_code) == ("yes per-call\n", "oops\n", 3), r
try:
    sb.commands.run("exit 5", check=True)
    raise AssertionError("check=True did not raise")
except CommandExitError as e:
    assert e.exit_code == 5
assert sb.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
assert sb.commands.run(["cat"], stdin="piped in").stdout == "piped in"

# Streamed: each line arrives before the command ends.
seen = []
t0 = time.monotonic()
r = sb.commands.run("for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done",
                    on_stdout=lambda s: seen.append((time.monotonic() - t0, s)))
end = time.monotonic() - t0
text = "".join(s for _, s in seen)
assert text == "".join("line %d\n" % i for i in range(1, 6)), seen
assert seen[0][0] < end - 0.25, ("the first line came only at the end", seen, end)
summary["stream_first_s"], summary["stream_end_s"] = seen[0][0], end

# A timeout kills the whole process tree.
r = sb.commands.run("sleep 300 & sleep 300 & sleep 301", timeout=1)
assert r.timed_out and r.exit_code == 124, r
left = sb.commands.run("for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done | grep -c '^sleep 30[01]' || true")
assert left.stdout.strip() == "0", "sleeps survived the timeout: %r" % left.stdout

# Files: 100 MB each way, byte-identical, streamed.
blob = os.urandom(1024 * 1024) * 100
t = time.monotonic()
sb.files.write("/app/big/blob.bin", blob)
summary["write_100mb_s"] = time.monotonic() - t
t = time.monotonic()
back = sb.files.read("/app/big/blob.bin", format="bytes")
summary["read_100mb_s"] = time.monotonic() - t
assert hashlib.sha256(back).digest() == hashlib.sha256(blob).digest(), "100 MB came back different"
guest_sum = sb.commands.run("sha256sum /app/big/blob.bin").stdout.split()[0]
assert guest_sum == hashlib.sha256(blob).hexdigest()
sb.files.write("/app/t/hello.txt", "hé\n")
assert sb.files.read("/app/t/hello.txt") == "hé\n"
assert [e.name for e in sb.files.list("/app/t")] == ["hello.txt"]
assert sb.files.exists("/app/t/hello.txt") and not sb.files.exists("/app/t/nope")
sb.files.make_dir("/app/t/sub/deeper")
assert sb.files.stat("/app/t/sub").kind == "dir"
sb.files.remove("/app/t")
try:
    sb.files.read("/app/t/hello.txt")
    raise AssertionError("a removed file was read")
except FileNotFound:
    pass

# Background: stdin, wait, kill.
h = sb.commands.start("while read l; do echo got $l; done; echo eof")
h.send_stdin("a\n")
h.send_stdin(b"b\n")
h.close_stdin()
r = h.wait()
assert r.stdout == "got a\ngot b\neof\n" and r.exit_code == 0, r
h = sb.commands.start("trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.1; done")
time.sleep(1)
h.kill("TERM")
r = h.wait()
assert "ready" in r.stdout and r.exit_code == 7, r

# Input to a command that ended fails at once instead of hanging.
h = sb.commands.start("true")
assert h.wait().exit_code == 0
t = time.monotonic()
try:
    h.send_stdin("late\n")
    raise AssertionError("stdin to an ended command was accepted")
except mvm.errors.ApiError:
    pass
assert time.monotonic() - t < 5, "send_stdin hung"

# Only regular files are read: a link to /dev/zero is refused, not endless.
sb.commands.run("ln -sf /dev/zero /tmp/zero")
try:
    sb.files.read("/tmp/zero")
    raise AssertionError("read a link to /dev/zero")
except mvm.errors.ApiError as e:
    assert e.code == "E_FILE_KIND", e.code

# A create that fails for a taken id leaves the sandbox's record alone.
try:
    Sandbox.create(template="python-3.13", id=sb.id, envs={"FROM_CREATE": "clobbered"})
    raise AssertionError("a taken id was created again")
except mvm.errors.ApiError as e:
    assert e.code == "E_SANDBOX_EXISTS", e.code
assert sb.commands.run("echo $FROM_CREATE").stdout == "yes\n"

# Snapshot, fork, pause, resume. A command streaming output does not hold
# a snapshot back, and streams on through it with nothing lost.
sb.files.write("/app/state.txt", "before")
ticker = sb.commands.start("for i in $(seq 1 30); do echo tick $i; sleep 0.1; done")
time.sleep(0.5)
t = time.monotonic()
tag = sb.snapshot()
summary["snapshot_while_streaming_s"] = time.monotonic() - t
r = ticker.wait()
assert r.stdout == "".join("tick %d\n" % i for i in range(1, 31)) and r.exit_code == 0, r
forks = sb.fork(2, timeout=120)
assert len(forks) == 2
for f in forks:
    assert f.files.read("/app/state.txt") == "before"
    f.files.write("/app/state.txt", f.id)
assert [f.files.read("/app/state.txt") for f in forks] == [f.id for f in forks]
assert sb.files.read("/app/state.txt") == "before"
for f in forks:
    f.kill()
# A pause ends the tracking of a running command (its wait fails), but
# the process itself is saved and runs on; the handle still signals it.
sleeper = sb.commands.start("sleep 1000")
sb.pause()
assert sb.info().status == "paused"
sb.resume()
assert sb.files.read("/app/state.txt") == "before"
count = "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done | grep -c '^sleep 1000' || true"
assert sb.commands.run(count).stdout.strip() == "1", "the paused command did not run on"
try:
    sleeper.wait()
    raise AssertionError("a command's wait across a pause reported an exit")
except mvm.errors.ApiError:
    pass
sleeper.kill()
deadline = time.monotonic() + 10
while sb.commands.run(count).stdout.strip() != "0":
    assert time.monotonic() < deadline, "the kill did not reach the command after resume"
    time.sleep(0.2)

# Ten sandboxes at once from one process, from the snapshot.
results, errors = {}, []
created = []


def one(i):
    try:
        t = time.monotonic()
        s = Sandbox.create(template=tag, timeout=120)
        r = s.commands.run("true")
        dt = time.monotonic() - t
        out = s.commands.run("echo sandbox %d" % i).stdout
        created.append(s)
        results[i] = (out, dt, r.exit_code)
    except Exception as e:  # reported below
        errors.append("%d: %r" % (i, e))


threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
t = time.monotonic()
for th in threads:
    th.start()
for th in threads:
    th.join()
summary["ten_concurrent_s"] = time.monotonic() - t
assert not errors, errors
assert sorted(results) == list(range(10))
for i, (out, _, code) in results.items():
    assert out == "sandbox %d\n" % i and code == 0, (i, out)
summary["create_to_first_run_s"] = sorted(dt for _, dt, _ in results.values())
for s in created:
    s.kill()

sb.kill()
sb.kill()  # twice is fine
try:
    Sandbox.connect(sb.id)
    raise AssertionError("a killed sandbox was found")
except SandboxNotFound:
    pass

# The same surface under asyncio.
import asyncio


async def main():
    async with await mvm.AsyncSandbox.create(template=tag, timeout=120) as a:
        r = await a.commands.run("echo async")
        assert r.stdout == "async\n", r
        await a.files.write("/tmp/x", b"\x00\x01")
        assert await a.files.read("/tmp/x", format="bytes") == b"\x00\x01"


asyncio.run(main())
print(json.dumps(summary))
