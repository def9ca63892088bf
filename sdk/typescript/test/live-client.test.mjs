// Live mode of the runtime SDK against a PROTOCOL TEST DOUBLE: an
// in-process node:http server speaking just enough of docs/api.md to check
// the client (streaming, errors, uploads, auth, autostart). It is not
// `mvmctl serve`; end-to-end tests against the real server live elsewhere.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { after, before, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as mvm from "../dist/index.js";

const INDEX = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "dist", "index.js");
const MB20 = 20 * 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The protocol test double. `requests` logs every request; `hooks` lets a test steer one route. */
class FakeApi {
  constructor({ token = null } = {}) {
    this.token = token;
    this.requests = [];
    this.sandboxes = new Map();
    this.files = new Map(); // path -> Buffer
    this.uploads = []; // {path, size, sha256, mode}
    this.killed = [];
    this.hooks = {};
    this.server = http.createServer((req, res) => this.handle(req, res).catch((e) => this.fail(res, 500, "E_RUNTIME", String(e))));
  }

  listenUnix(sock) {
    return new Promise((r) => this.server.listen(sock, r));
  }

  listenTcp() {
    return new Promise((r) => this.server.listen(0, "127.0.0.1", () => r(this.server.address().port)));
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(r));
  }

  json(res, status, body) {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  }

  fail(res, status, code, message, hint = "") {
    if (res.headersSent) return res.end();
    this.json(res, status, { error: { code, message, hint } });
  }

  async body(req) {
    const parts = [];
    for await (const c of req) parts.push(c);
    const text = Buffer.concat(parts).toString("utf8");
    return text ? JSON.parse(text) : {};
  }

  sandbox(id, extra = {}) {
    return { id, status: "running", template: "python-3.13", timeout: 300, on_timeout: "kill", metadata: {}, envs: {}, ...extra };
  }

  async handle(req, res) {
    const url = new URL(req.url, "http://x");
    const entry = { method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers };
    this.requests.push(entry);
    if (this.token !== null && req.headers.authorization !== `Bearer ${this.token}`) {
      return this.fail(res, 401, "E_API_UNAUTHORIZED", "missing or wrong bearer token", "the token is in $MVM_HOME/api-token");
    }
    const m = url.pathname.match(/^\/v1\/sandboxes\/([^/]+)(\/.*)?$/);
    const id = m ? decodeURIComponent(m[1]) : null;
    const rest = m ? (m[2] ?? "") : null;
    const key = `${req.method} ${rest ?? url.pathname}`;
    if (this.hooks[key]) return this.hooks[key](req, res, entry, id);

    if (key === "GET /v1/health") return this.json(res, 200, { server: "mvm", version: "test-double", api: 1 });
    if (key === "POST /v1/sandboxes") {
      const body = await this.body(req);
      entry.body = body;
      if (body.template === "no-such-template") return this.fail(res, 404, "E_TEMPLATE_NOT_FOUND", "no snapshot, image or base template named `no-such-template`", "`mvmctl snapshot list`");
      const sid = body.id ?? `sb-${this.sandboxes.size + 1}`;
      const sb = this.sandbox(sid, { template: body.template, metadata: body.metadata ?? {}, envs: body.envs ?? {} });
      this.sandboxes.set(sid, sb);
      return this.json(res, 201, sb);
    }
    if (key === "GET /v1/sandboxes") return this.json(res, 200, { sandboxes: [...this.sandboxes.values()] });
    if (id !== null && id.startsWith("err-")) {
      // err-<CODE>-<status>: answers that error, for the mapping test
      const [, code, status] = id.match(/^err-(E_[A-Z_]+)-(\d+)$/);
      return this.fail(res, Number(status), code, `double says ${code}`, `hint for ${code}`);
    }
    if (id !== null && !this.sandboxes.has(id)) return this.fail(res, 404, "E_SANDBOX_NOT_FOUND", `no instance named \`${id}\``, "`mvmctl ps` lists instances");
    const sb = this.sandboxes.get(id);
    if (key === "GET ") return this.json(res, 200, sb);
    if (key === "DELETE ") {
      this.sandboxes.delete(id);
      this.killed.push(id);
      return this.json(res, 200, { id, killed: true });
    }
    if (key === "POST /pause") return this.json(res, 200, Object.assign(sb, { status: "paused" }));
    if (key === "POST /resume") return this.json(res, 200, Object.assign(sb, { status: "running" }));
    if (key === "POST /timeout") {
      entry.body = await this.body(req);
      return this.json(res, 200, Object.assign(sb, { timeout: entry.body.timeout }));
    }
    if (key === "POST /invoke") {
      const body = (entry.body = await this.body(req));
      if (body.args.boom) return this.json(res, 200, { function_error: { kind: "ValueError", message: "boom", traceback: "Traceback: line 1" } });
      return this.json(res, 200, { value: { sum: body.args.a + body.args.b, entrypoint: body.entrypoint } });
    }
    if (key === "POST /fork") {
      const body = (entry.body = await this.body(req));
      const forks = Array.from({ length: body.count }, (_, i) => this.sandbox(`${id}-f${i}`));
      for (const f of forks) this.sandboxes.set(f.id, f);
      return this.json(res, 201, { tag: "fork-tag", sandboxes: forks });
    }
    if (key === "PUT /files") {
      // Hash while streaming: the double never holds more than one chunk to check integrity.
      const hash = createHash("sha256");
      const parts = [];
      let size = 0;
      for await (const c of req) {
        hash.update(c);
        size += c.length;
        if (size <= MB20 + 1) parts.push(c);
      }
      const p = url.searchParams.get("path");
      this.files.set(p, Buffer.concat(parts));
      this.uploads.push({ path: p, size, sha256: hash.digest("hex"), mode: url.searchParams.get("mode"), type: req.headers["content-type"] });
      return this.json(res, 200, { path: p, size });
    }
    if (key === "GET /files") {
      const p = url.searchParams.get("path");
      if (!this.files.has(p)) return this.fail(res, 404, "E_FILE_NOT_FOUND", `no such guest path ${p}`);
      res.writeHead(200, { "Content-Type": "application/octet-stream" });
      const data = this.files.get(p);
      // In chunks, so the client really reads a stream.
      for (let i = 0; i < data.length; i += 1 << 20) {
        if (!res.write(data.subarray(i, i + (1 << 20)))) await new Promise((r) => res.once("drain", r));
      }
      return res.end();
    }
    if (key === "GET /files/stat") {
      const p = url.searchParams.get("path");
      if (!this.files.has(p)) return this.fail(res, 404, "E_FILE_NOT_FOUND", `no such guest path ${p}`);
      return this.json(res, 200, { path: p, kind: "file", size: this.files.get(p).length, mode: 0o644 });
    }
    if (key === "GET /files/list") {
      const p = url.searchParams.get("path");
      const entries = [...this.files.keys()].filter((f) => path.posix.dirname(f) === p).map((f) => ({ name: path.posix.basename(f), kind: "file", size: this.files.get(f).length }));
      return this.json(res, 200, { path: p, entries });
    }
    if (key === "DELETE /files") {
      const p = url.searchParams.get("path");
      if (!this.files.delete(p)) return this.fail(res, 404, "E_FILE_NOT_FOUND", `no such guest path ${p}`);
      return this.json(res, 200, { path: p, removed: true });
    }
    if (key === "POST /files/mkdir") {
      entry.body = await this.body(req);
      return this.json(res, 200, { path: entry.body.path });
    }
    return this.fail(res, 404, "E_API_ROUTE", `no route ${req.method} ${url.pathname}`);
  }
}

function ndjsonStart(res) {
  res.writeHead(200, { "Content-Type": "application/x-ndjson" });
}
const line = (res, obj) => res.write(JSON.stringify(obj) + "\n");
const b64 = (s) => Buffer.from(s).toString("base64");

let dir;
let api;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-live-"));
  api = new FakeApi();
  await api.listenUnix(path.join(dir, "api.sock"));
  delete process.env.MVM_SDK_MODE;
  delete process.env.MVM_API_TOKEN;
  process.env.MVM_API_URL = `unix:${path.join(dir, "api.sock")}`;
});

after(async () => {
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  api.requests.length = 0;
  api.hooks = {};
  process.env.MVM_API_URL = `unix:${path.join(dir, "api.sock")}`;
  delete process.env.MVM_API_TOKEN;
});

test("create sends the recording of a base template and its source_root", async () => {
  const sb = await mvm.Sandbox.create({
    template: "node-22",
    env: { MODE: "demo" },
    secrets: { API_KEY: "api-key", OTHER: mvm.secret("other-key") },
    include: ["data/**"],
    resources: mvm.resources({ memoryMb: 512 }),
    envs: { GREETING: "hello" },
    timeout: 60,
    onTimeout: "pause",
    metadata: { user: "ari" },
    id: "sb-mine",
  });
  assert.equal(sb.id, "sb-mine");
  const body = api.requests.find((r) => r.method === "POST" && r.path === "/v1/sandboxes").body;
  assert.equal(body.template, "node-22");
  assert.equal(body.source_root, path.dirname(path.resolve(process.argv[1])));
  assert.equal(body.recording.operations, undefined);
  assert.equal(body.recording.template, "node-22");
  assert.deepEqual(body.recording.include, ["data/**"]);
  assert.deepEqual(body.recording.env.MODE, { kind: "literal", value: "demo" });
  assert.equal(body.recording.env.API_KEY.kind, "secret_ref");
  assert.equal(body.recording.env.API_KEY.name, "api-key");
  assert.equal(body.recording.env.OTHER.name, "other-key");
  assert.equal(body.recording.resources.memory_mb, 512);
  assert.deepEqual(body.recording.network.mode, "none");
  assert.deepEqual([body.timeout, body.on_timeout, body.id], [60, "pause", "sb-mine"]);
  assert.deepEqual(body.envs, { GREETING: "hello" });
  assert.deepEqual(body.metadata, { user: "ari" });
  assert.equal((await sb.info()).metadata.user, "ari");
  assert.ok((await mvm.Sandbox.list()).some((s) => s.id === "sb-mine"));
  assert.equal((await mvm.Sandbox.connect("sb-mine")).id, "sb-mine");
  await sb.kill();
  await sb.kill(); // idempotent: one DELETE
  assert.equal(api.requests.filter((r) => r.method === "DELETE").length, 1);
  await assert.rejects(sb.commands.run("ls"), /was killed/);
});

test("a non-base template sends no recording and refuses declarations", async () => {
  const sb = await mvm.Sandbox.create({ template: "my-snapshot", envs: { A: "1" } });
  const body = api.requests.find((r) => r.path === "/v1/sandboxes").body;
  assert.deepEqual(Object.keys(body).sort(), ["envs", "on_timeout", "template", "timeout"]);
  await assert.rejects(mvm.Sandbox.create({ template: "my-snapshot", env: { A: "1" }, include: ["x"] }), /not a base template.*env, include/);
  await assert.rejects(mvm.Sandbox.create({ template: "minimal", timeout: -1 }), /timeout must be a positive number/);
  await assert.rejects(mvm.Sandbox.create({ template: "minimal", env: { A: "1" }, secrets: { A: "a" } }), /both in env and in secrets/);
  await assert.rejects(mvm.Sandbox.create({ bogus: 1 }), /no option 'bogus'/);
  await sb.kill();
});

test("command output is delivered line by line as the server sends it", async () => {
  const order = [];
  let gotFirst;
  const firstSeen = new Promise((r) => (gotFirst = r));
  api.hooks["POST /commands"] = async (req, res, entry) => {
    entry.body = await api.body(req);
    ndjsonStart(res);
    line(res, { type: "stdout", data: b64("line 1\n") });
    // Hold the exit back until the client has seen line 1 (or give up after 5 s,
    // which makes the ordering assertion below fail rather than hang).
    let timer;
    await Promise.race([firstSeen, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    line(res, { type: "stderr", data: b64("warn\n") });
    await sleep(50);
    // A UTF-8 sequence split across two events must come out whole.
    const euro = Buffer.from("€\n");
    line(res, { type: "stdout", data: euro.subarray(0, 1).toString("base64") });
    line(res, { type: "stdout", data: euro.subarray(1).toString("base64") });
    order.push("server sent exit");
    line(res, { type: "exit", exit_code: 3, signal: null, timed_out: false });
    res.end();
  };
  const sb = await mvm.Sandbox.create();
  const result = await sb.commands.run(["sh", "-c", "x"], {
    cwd: "/app",
    envs: { A: "1" },
    timeout: 5,
    stdin: "hi",
    onStdout: (s) => {
      order.push(`stdout ${JSON.stringify(s)}`);
      gotFirst();
    },
    onStderr: (s) => order.push(`stderr ${JSON.stringify(s)}`),
  });
  assert.equal(order[0], 'stdout "line 1\\n"');
  assert.ok(order.indexOf("server sent exit") > 0);
  assert.ok(order.indexOf('stderr "warn\\n"') < order.indexOf("server sent exit"));
  assert.ok(result instanceof mvm.CommandResult);
  assert.deepEqual({ ...result }, { stdout: "line 1\n€\n", stderr: "warn\n", exitCode: 3, signal: null, timedOut: false });
  const body = api.requests.find((r) => r.path.endsWith("/commands")).body;
  assert.deepEqual(body, { cmd: ["sh", "-c", "x"], background: false, cwd: "/app", envs: { A: "1" }, timeout: 5, stdin: b64("hi") });

  const err = await sb.commands.run("false", { check: true }).catch((e) => e);
  assert.ok(err instanceof mvm.CommandExitError, String(err));
  assert.equal(err.exitCode, 3);
  assert.equal(err.stderr, "warn\n");
  assert.equal(err.stdout, "line 1\n€\n");
  await sb.kill();
});

test("an error event and a truncated stream are errors", async () => {
  const sb = await mvm.Sandbox.create();
  api.hooks["POST /commands"] = async (req, res) => {
    await api.body(req);
    ndjsonStart(res);
    line(res, { type: "stdout", data: b64("partial") });
    line(res, { type: "error", error: { code: "E_GUEST", message: "the guest agent went away", hint: "see the console log" } });
    res.end();
  };
  const e = await sb.commands.run("x").catch((x) => x);
  assert.ok(e instanceof mvm.ApiError && e.code === "E_GUEST" && e.hint === "see the console log", String(e));
  api.hooks["POST /commands"] = async (req, res) => {
    await api.body(req);
    ndjsonStart(res);
    line(res, { type: "stdout", data: b64("partial") });
    res.end();
  };
  await assert.rejects(sb.commands.run("x"), /ended without an exit event/);
});

test("a download cut short is E_API_TRUNCATED, not a missing server", async () => {
  const sb = await mvm.Sandbox.create();
  api.hooks["GET /files"] = (req, res) => {
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": "100" });
    res.write(Buffer.alloc(10, 1));
    // The server dies mid-body.
    setTimeout(() => res.socket.destroy(), 20);
  };
  const e = await sb.files.read("/x", { format: "bytes" }).catch((x) => x);
  assert.ok(e instanceof mvm.ApiError && e.code === "E_API_TRUNCATED", String(e));
  assert.ok(!(e instanceof mvm.ServerUnavailable), String(e));
  delete api.hooks["GET /files"];
  await sb.kill();
});

test("background commands: start, wait, stdin, kill, list", async () => {
  const sb = await mvm.Sandbox.create();
  const posts = [];
  api.hooks["POST /commands"] = async (req, res) => {
    posts.push(await api.body(req));
    api.json(res, 201, { command_id: "c1" });
  };
  api.hooks["GET /commands"] = (req, res) => api.json(res, 200, { commands: [{ command_id: "c1", cmd: "serve", running: true, exit_code: null }] });
  api.hooks["GET /commands/c1"] = (req, res) => {
    ndjsonStart(res);
    line(res, { type: "stdout", data: b64("ready\n") });
    line(res, { type: "exit", exit_code: 137, signal: "KILL", timed_out: false });
    res.end();
  };
  const stdin = [];
  api.hooks["POST /commands/c1/stdin"] = async (req, res) => {
    const b = await api.body(req);
    stdin.push(b);
    api.json(res, 200, { sent: b.data ? Buffer.from(b.data, "base64").length : 0 });
  };
  const kills = [];
  api.hooks["POST /commands/c1/kill"] = async (req, res) => {
    kills.push(await api.body(req));
    api.json(res, 200, { signalled: true });
  };
  const h = await sb.commands.start("serve", { cwd: "/srv" });
  assert.equal(h.id, "c1");
  assert.equal(h.recorded, false);
  const h2 = await sb.commands.run("serve", { background: true });
  assert.ok(h2 instanceof mvm.CommandHandle);
  assert.deepEqual(posts, [
    { cmd: "serve", background: true, cwd: "/srv" },
    { cmd: "serve", background: true },
  ]);
  assert.equal(await h.sendStdin("abc"), 3);
  await h.closeStdin();
  assert.deepEqual(stdin, [{ data: b64("abc") }, { eof: true }]);
  await h.kill("TERM");
  await h.kill();
  assert.deepEqual(kills, [{ signal: "TERM" }, { signal: "KILL" }]);
  const seen = [];
  const r = await h.wait({ onStdout: (s) => seen.push(s) });
  assert.deepEqual(seen, ["ready\n"]);
  assert.deepEqual([r.exitCode, r.signal], [137, "KILL"]);
  await assert.rejects(h.wait({ check: true }), (e) => e instanceof mvm.CommandExitError && e.exitCode === 137);
  assert.deepEqual((await sb.commands.list()).map((c) => c.command_id), ["c1"]);
});

test("API errors map to typed errors with code, message, hint and status", async () => {
  const cases = [
    ["E_SANDBOX_NOT_FOUND", 404, mvm.SandboxNotFound],
    ["E_TEMPLATE_NOT_FOUND", 404, mvm.TemplateNotFound],
    ["E_FILE_NOT_FOUND", 404, mvm.FileNotFound],
    ["E_TIMEOUT", 504, mvm.TimeoutError],
    ["E_POLICY_REFUSED", 403, mvm.PolicyRefused],
    ["E_SECRETS_MISSING", 412, mvm.SecretsMissing],
    ["E_EGRESS_DENIED", 403, mvm.EgressDenied],
    ["E_API_UNAUTHORIZED", 401, mvm.Unauthorized],
    ["E_SANDBOX_STATE", 409, mvm.ApiError],
  ];
  for (const [code, status, Cls] of cases) {
    const e = await mvm.Sandbox.connect(`err-${code}-${status}`).catch((x) => x);
    assert.ok(e instanceof Cls, `${code}: got ${e}`);
    assert.ok(e instanceof mvm.ApiError && e instanceof mvm.SandboxError);
    assert.equal(e.code, code);
    assert.equal(e.status, status);
    assert.equal(e.message, `double says ${code}`);
    assert.equal(e.hint, `hint for ${code}`);
  }
  // Real routes of the double.
  const missing = await mvm.Sandbox.connect("sb-gone").catch((x) => x);
  assert.ok(missing instanceof mvm.SandboxNotFound);
  assert.match(missing.hint, /mvmctl ps/);
  await assert.rejects(mvm.Sandbox.create({ template: "no-such-template" }), mvm.TemplateNotFound);
  const sb = await mvm.Sandbox.create();
  await assert.rejects(sb.files.read("/nope"), mvm.FileNotFound);
  assert.equal(await sb.files.exists("/nope"), false);
  const fe = await sb.invoke({ boom: true }).catch((x) => x);
  assert.ok(fe instanceof mvm.FunctionError);
  assert.deepEqual([fe.kind, fe.message, fe.traceback], ["ValueError", "boom", "Traceback: line 1"]);
  assert.deepEqual(await sb.invoke({ a: 2, b: 3 }, { entrypoint: "add" }), { sum: 5, entrypoint: "add" });
});

test("a 20 MB upload arrives byte-identical, streamed or whole; downloads too", async () => {
  const sb = await mvm.Sandbox.create();
  const data = randomBytes(MB20);
  const sha = createHash("sha256").update(data).digest("hex");
  // A Readable of uneven chunks.
  async function* pieces() {
    for (let i = 0; i < data.length; ) {
      const n = 1 + ((i * 7919) % 300000);
      yield data.subarray(i, i + n);
      i += n;
    }
  }
  const answer = await sb.files.write("/data/big.bin", Readable.from(pieces()), { mode: 0o600 });
  assert.deepEqual(answer, { path: "/data/big.bin", size: MB20 });
  let up = api.uploads.at(-1);
  assert.deepEqual([up.size, up.sha256, up.mode, up.type], [MB20, sha, "600", "application/octet-stream"]);

  await sb.files.write("/data/whole.bin", data);
  up = api.uploads.at(-1);
  assert.deepEqual([up.size, up.sha256, up.mode], [MB20, sha, null]);
  await sb.files.write("/data/gen.bin", pieces());
  assert.equal(api.uploads.at(-1).sha256, sha);
  await sb.files.write("/app/hello.txt", "héllo\n");
  assert.equal(api.files.get("/app/hello.txt").toString("utf8"), "héllo\n");

  const bytes = await sb.files.read("/data/big.bin", { format: "bytes" });
  assert.ok(bytes instanceof Uint8Array);
  assert.equal(createHash("sha256").update(bytes).digest("hex"), sha);
  const stream = await sb.files.read("/data/big.bin", { format: "stream" });
  const h = createHash("sha256");
  let chunks = 0;
  for await (const c of stream) {
    h.update(c);
    chunks++;
  }
  assert.equal(h.digest("hex"), sha);
  assert.ok(chunks > 1, "the download came as one chunk: not streamed");
  assert.equal(await sb.files.read("/app/hello.txt"), "héllo\n");
  assert.deepEqual(await sb.files.stat("/app/hello.txt"), { path: "/app/hello.txt", kind: "file", size: 7, mode: 0o644 });
  assert.deepEqual((await sb.files.list("/data")).map((e) => e.name).sort(), ["big.bin", "gen.bin", "whole.bin"]);
  await sb.files.makeDir("/data/sub");
  await sb.files.remove("/data/gen.bin");
  assert.equal(await sb.files.exists("/data/gen.bin"), false);
  await assert.rejects(sb.files.write("relative.txt", "x"), /absolute guest path/);
  // The server refuses before reading the upload: the typed error, not a hang or EPIPE.
  api.sandboxes.delete(sb.id);
  await assert.rejects(sb.files.write("/data/late.bin", Readable.from(pieces())), mvm.SandboxNotFound);
});

test("lifecycle calls and async dispose", async () => {
  const sb = await mvm.Sandbox.create({ id: "sb-life" });
  assert.equal((await sb.pause()).status, "paused");
  assert.equal((await sb.resume()).status, "running");
  assert.equal((await sb.setTimeout(600)).timeout, 600);
  const forks = await sb.fork(2, { timeout: 30 });
  assert.deepEqual(forks.map((f) => f.id), ["sb-life-f0", "sb-life-f1"]);
  assert.deepEqual(api.requests.find((r) => r.path.endsWith("/fork")).body, { count: 2, timeout: 30 });
  api.hooks["POST /snapshot"] = async (req, res) => api.json(res, 200, { tag: (await api.body(req)).tag, bytes: 42 });
  assert.deepEqual(await sb.snapshot("t1"), { tag: "t1", bytes: 42 });
  const dispose = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");
  await sb[dispose]();
  assert.ok(api.killed.includes("sb-life"));
  // Killing a sandbox that is already gone is fine.
  const again = await mvm.Sandbox.create({ id: "sb-twice" });
  api.sandboxes.delete("sb-twice");
  await again.kill();
});

test("bearer token over TCP", async () => {
  const tcp = new FakeApi({ token: "s3cret" });
  const port = await tcp.listenTcp();
  try {
    process.env.MVM_API_URL = `http://127.0.0.1:${port}`;
    process.env.MVM_API_TOKEN = "s3cret";
    const sb = await mvm.Sandbox.create();
    assert.ok(tcp.requests.every((r) => r.headers.authorization === "Bearer s3cret"));
    await sb.kill();
    process.env.MVM_API_TOKEN = "wrong";
    const e = await mvm.Sandbox.create().catch((x) => x);
    assert.ok(e instanceof mvm.Unauthorized, String(e));
    assert.equal(e.status, 401);
    delete process.env.MVM_API_TOKEN;
    await assert.rejects(mvm.Sandbox.list(), mvm.Unauthorized);
  } finally {
    await tcp.close();
  }
  // Nothing listening at an explicit URL: no autostart, a clear error.
  const e = await mvm.Sandbox.list().catch((x) => x);
  assert.ok(e instanceof mvm.ServerUnavailable, String(e));
  assert.match(e.message, /nothing answers on http:\/\/127\.0\.0\.1/);
});

test("autostart names the missing binary and how to build it", async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-home-"));
  const saved = { ...process.env };
  try {
    delete process.env.MVM_API_URL;
    process.env.MVM_HOME = home;
    process.env.MVM_MVMCTL = path.join(home, "no-such-mvmctl");
    const e = await mvm.Sandbox.create().catch((x) => x);
    assert.ok(e instanceof mvm.ServerUnavailable, String(e));
    assert.match(e.message, new RegExp(`nothing answers on ${path.join(home, "api.sock")}`));
    assert.match(e.message, /no-such-mvmctl` was not found or is not executable/);
    assert.match(e.hint, /cargo build --release -p mvmctl/);
    assert.match(e.hint, /MVM_MVMCTL/);
    assert.match(e.hint, /mvmctl doctor/);
    assert.deepEqual(fs.readdirSync(home), [], "a missing binary must leave MVM_HOME untouched");
    // A directory on PATH without mvmctl: the same error for the default name.
    delete process.env.MVM_MVMCTL;
    process.env.PATH = home;
    const e2 = await mvm.Sandbox.create().catch((x) => x);
    assert.match(e2.message, /`mvmctl` was not found/);
  } finally {
    process.env = saved;
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test("autostart runs `MVM_MVMCTL serve` and waits for health", async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-home-"));
  // A stand-in mvmctl: a node script that serves health and create on $MVM_HOME/api.sock.
  const fake = path.join(home, "fake-mvmctl");
  fs.writeFileSync(
    fake,
    `#!${process.execPath}
const http = require("node:http"), fs = require("node:fs"), path = require("node:path");
if (process.argv[2] !== "serve") process.exit(2);
const sock = path.join(process.env.MVM_HOME, "api.sock");
fs.writeFileSync(path.join(process.env.MVM_HOME, "pid"), String(process.pid));
process.stderr.write("fake serve starting\\n");
setTimeout(() => http.createServer((req, res) => {
  res.writeHead(req.url === "/v1/health" ? 200 : 201, {"Content-Type": "application/json"});
  res.end(JSON.stringify(req.url === "/v1/health" ? {server: "mvm", api: 1} : {id: "sb-auto", status: "running", template: "minimal"}));
}).listen(sock), 300);
setTimeout(() => process.exit(0), 20000);
`,
    { mode: 0o755 },
  );
  const saved = { ...process.env };
  try {
    delete process.env.MVM_API_URL;
    process.env.MVM_HOME = home;
    process.env.MVM_MVMCTL = fake;
    const sb = await mvm.Sandbox.create({ template: "minimal" });
    assert.equal(sb.id, "sb-auto");
    assert.match(fs.readFileSync(path.join(home, "api.log"), "utf8"), /fake serve starting/);
  } finally {
    process.env = saved;
    const pid = Number(fs.readFileSync(path.join(home, "pid"), "utf8"));
    try {
      process.kill(pid);
    } catch {}
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test("record mode refuses what a recording cannot hold", () => {
  const rdir = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-rec-"));
  const run = (body) => {
    const file = path.join(rdir, "s.mjs");
    fs.writeFileSync(file, `import * as mvm from ${JSON.stringify(INDEX)};\n${body}`);
    return spawnSync(process.execPath, [file], {
      env: { ...process.env, MVM_SDK_MODE: "record", MVM_SDK_OUT_PATH: path.join(rdir, "rec.json"), MVM_API_URL: "unix:/nonexistent" },
    });
  };
  let r = run(`await mvm.Sandbox.create({ envs: { A: "1" } });`);
  assert.match(r.stderr.toString(), /envs cannot be recorded/);
  r = run(`const sb = await mvm.Sandbox.create(); await sb.commands.run("ls", { cwd: "/app" });`);
  assert.match(r.stderr.toString(), /cwd cannot be recorded/);
  r = run(`const sb = await mvm.Sandbox.create(); await sb.files.read("/x");`);
  assert.match(r.stderr.toString(), /files.read cannot be recorded/);
  r = run(`const sb = await mvm.Sandbox.create(); await sb.files.write("/x", "y", { mode: 0o755 });`);
  assert.match(r.stderr.toString(), /mode cannot be recorded/);
  // Live-only options that do not shape the image are ignored; callbacks too; secrets merge into env.
  r = run(`const sb = await mvm.Sandbox.create({ template: "minimal", timeout: 5, metadata: { a: "b" }, secrets: { K: "k" } });
const h = await sb.commands.run("ls", { onStdout: () => {}, check: true });
if (!h.recorded) throw new Error("not recorded");`);
  assert.equal(r.status, 0, r.stderr.toString());
  const rec = JSON.parse(fs.readFileSync(path.join(rdir, "rec.json"), "utf8"));
  assert.equal(rec.sandboxes[0].env.K.kind, "secret_ref");
  assert.deepEqual(rec.sandboxes[0].operations, [{ op: "run", cmd: "ls", background: false }]);
  fs.rmSync(rdir, { recursive: true, force: true });
});
