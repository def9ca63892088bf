import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as mvm from "../dist/index.js";

const PKG = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const INDEX = path.join(PKG, "dist", "index.js");
const TSX = path.join(PKG, "node_modules", ".bin", "tsx");

function record(script, env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-rec-"));
  // A .ts script run by tsx, as mvmctl's auto-run does (and so that
  // `await using` works on Node versions without it).
  const file = path.join(dir, "script.ts");
  fs.writeFileSync(path.join(dir, "package.json"), '{"type": "module"}');
  fs.writeFileSync(file, script.replaceAll("MVM_SDK", JSON.stringify(INDEX)));
  const out = path.join(dir, "rec.json");
  const proc = spawnSync(TSX, [file], {
    cwd: dir,
    env: { ...process.env, MVM_SDK_MODE: "record", MVM_SDK_OUT_PATH: out, ...env },
  });
  return { proc, out, dir };
}

test("record mode writes the recording at exit", () => {
  const { proc, out, dir } = record(`
import * as mvm from MVM_SDK;
{
  await using sb = await mvm.Sandbox.create({
    template: "node-22",
    env: { MODE: "demo", API_KEY: mvm.secret("api-key", { type: "header", header: "X-Api-Key", hosts: ["api.example.com"] }) },
    include: ["data/**"],
    resources: mvm.resources({ memoryMb: 512 }),
    network: mvm.network({ mode: "deny", allowHttps: ["api.example.com"] }),
  });
  await sb.files.write("/app/hello.txt", "hi\\n");
  await sb.commands.run(["node", "-e", "1"]);
  await sb.commands.start("node server.js");
}
const other = await mvm.Sandbox.create({ template: "minimal" });
await other.kill();
await other.kill();
`);
  assert.equal(proc.status, 0, proc.stderr.toString());
  const rec = JSON.parse(fs.readFileSync(out, "utf8"));
  assert.equal(rec.recording_version, 1);
  assert.deepEqual(rec.sdk, { language: "typescript", version: mvm.version });
  assert.equal(rec.source_root, dir);
  const [first, second] = rec.sandboxes;
  assert.equal(first.template, "node-22");
  assert.deepEqual(first.env, {
    MODE: { kind: "literal", value: "demo" },
    API_KEY: { kind: "secret_ref", name: "api-key", type: "header", header: "X-Api-Key", hosts: ["api.example.com"] },
  });
  assert.deepEqual(first.resources, { cpu_cores: 1, memory_mb: 512, rootfs_size_mb: 512 });
  assert.deepEqual(first.network.egress.allowlist, [{ host: "api.example.com", port: 443 }]);
  assert.deepEqual(first.operations, [
    { op: "write", path: "/app/hello.txt", data_b64: Buffer.from("hi\n").toString("base64") },
    { op: "run", cmd: ["node", "-e", "1"], background: false },
    { op: "run", cmd: "node server.js", background: true },
    { op: "kill" },
  ]);
  assert.deepEqual(second, {
    template: "minimal",
    env: {},
    include: [],
    resources: { cpu_cores: 1, memory_mb: 256, rootfs_size_mb: 512 },
    network: { mode: "none", ports: [], egress: { allowlist: [] }, dns: { kind: "none" } },
    operations: [{ op: "kill" }],
  });
  assert.equal(mvm.canonicalJson(rec), fs.readFileSync(out, "utf8"));
});

test("record mode rejects bad calls", () => {
  let r = record(`import * as mvm from MVM_SDK; await mvm.Sandbox.create({ template: "ubuntu" });`);
  assert.match(r.proc.stderr.toString(), /template must be one of python-3.13/);
  r = record(`import * as mvm from MVM_SDK; const sb = await mvm.Sandbox.create(); await sb.kill(); await sb.commands.run("ls");`);
  assert.match(r.proc.stderr.toString(), /was killed/);
  r = record(`import * as mvm from MVM_SDK; await mvm.Sandbox.create();`, { MVM_SDK_OUT_PATH: "" });
  assert.match(r.proc.stderr.toString(), /MVM_SDK_OUT_PATH/);
});

test("live mode without a server or mvmctl says what is missing", async () => {
  // Live is the default; with no server answering and no mvmctl to start
  // one, create fails naming the binary and both ways forward.
  const keys = ["MVM_SDK_MODE", "MVM_API_URL", "MVM_HOME", "MVM_MVMCTL"];
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-live-"));
  delete process.env.MVM_SDK_MODE;
  delete process.env.MVM_API_URL;
  process.env.MVM_HOME = path.join(home, "home");
  process.env.MVM_MVMCTL = path.join(home, "no-such-mvmctl");
  try {
    await assert.rejects(mvm.Sandbox.create(), (e) => {
      const text = `${e.message}\n${e.hint ?? ""}`;
      assert.match(text, /no-such-mvmctl/);
      assert.match(text, /MVM_SDK_MODE=record/);
      assert.match(text, /mvmctl doctor/);
      return true;
    });
  } finally {
    for (const k of keys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
});
