// The TypeScript SDK in live mode against a real `mvmctl serve` (run by
// tests/api_vm.rs with MVM_API_URL set, under tsx). Each check asserts.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";

import { CommandExitError, FileNotFound, Sandbox, SandboxNotFound } from "../../../../sdk/typescript/dist/index.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let id = "";
{
  await using sb = await Sandbox.create({ template: "python-3.13", envs: { FROM_CREATE: "yes" }, timeout: 600 });
  id = sb.id;
  assert.equal((await sb.info()).status, "running");

  const r = await sb.commands.run("echo $FROM_CREATE $X; echo oops >&2; exit 3", { envs: { X: "per-call" } });
  assert.deepEqual([r.stdout, r.stderr, r.exitCode], ["yes per-call\n", "oops\n", 3]);
  await assert.rejects(sb.commands.run("exit 5", { check: true }), CommandExitError);

  // Streamed: the first line arrives before the command ends.
  const seen: [number, string][] = [];
  const t0 = performance.now();
  await sb.commands.run("for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done", {
    onStdout: (s: string) => seen.push([performance.now() - t0, s]),
  });
  const end = performance.now() - t0;
  assert.equal(seen.map(([, s]) => s).join(""), "line 1\nline 2\nline 3\nline 4\nline 5\n");
  assert.ok(seen[0][0] < end - 250, `first line at ${seen[0][0]} ms, end at ${end} ms`);

  const t = await sb.commands.run("sleep 300 & sleep 301", { timeout: 1 });
  assert.ok(t.timedOut && t.exitCode === 124);

  // Files: 20 MB each way.
  const blob = randomBytes(20 * 1024 * 1024);
  await sb.files.write("/app/blob.bin", blob);
  const back = await sb.files.read("/app/blob.bin", { format: "bytes" });
  assert.equal(sha(back), sha(blob));
  await sb.files.write("/app/t/hello.txt", "hé\n");
  assert.equal(await sb.files.read("/app/t/hello.txt"), "hé\n");
  assert.deepEqual((await sb.files.list("/app/t")).map((e: any) => e.name), ["hello.txt"]);
  assert.ok(await sb.files.exists("/app/t/hello.txt"));
  await sb.files.makeDir("/app/t/sub");
  await sb.files.remove("/app/t");
  await assert.rejects(sb.files.read("/app/t/hello.txt"), FileNotFound);

  // Background: stdin, wait, kill.
  const h = await sb.commands.start("while read l; do echo got $l; done; echo eof");
  await h.sendStdin("a\n");
  await h.closeStdin();
  const w = await h.wait();
  assert.equal(w.stdout, "got a\neof\n");
  const k = await sb.commands.start("sleep 1000");
  await k.kill();
  assert.equal((await k.wait()).exitCode, 137);

  // Snapshot and fork.
  await sb.files.write("/app/state.txt", "before");
  const [fork] = await sb.fork(1, { timeout: 120 });
  assert.equal(await fork.files.read("/app/state.txt"), "before");
  await fork.kill();
}
// `await using` killed it.
await assert.rejects(Sandbox.connect(id), SandboxNotFound);
console.log("ok");
