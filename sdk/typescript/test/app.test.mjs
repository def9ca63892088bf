import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as mvm from "../dist/index.js";

const PKG = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

beforeEach(() => mvm.reset());

function codeOf(fn) {
  try {
    fn();
  } catch (e) {
    if (e instanceof mvm.DeclarationError) return e.code;
    throw e;
  }
  assert.fail("no DeclarationError thrown");
}

test("app returns the function; defaults come from the const name and this file", () => {
  const say_hello = mvm.app({ source: mvm.localPath(".") })((name) => `hi ${name}`);
  assert.equal(say_hello("x"), "hi x");
  const ir = mvm.toIr();
  assert.equal(ir.id, "say-hello");
  assert.deepEqual(ir.apps[0].entrypoints, [
    { kind: "function", name: "say-hello", language: "node", module: "app.test", function: "say_hello", format: "json", working_dir: "/app", primary: true },
  ]);
  assert.deepEqual(ir.apps[0].image, { kind: "nix_packages", packages: ["nodejs_22"] });
  assert.deepEqual([ir.volumes, ir.extensions, ir.schema_version], [[], {}, "0.1"]);
});

test("workload id, entrypoints, hooks, env", () => {
  mvm.workload({ id: "math-svc" });
  mvm.app({
    name: "math",
    entrypoints: [mvm.entrypointFunction({ module: "mathsvc", function: "add_one", primary: true }), mvm.entrypoint({ command: ["node", "w.js"] })],
    beforeBuild: ["npm", "ci"],
    before_start: "node migrate.js",
    afterStart: mvm.hook(["node", "health.js"]),
    before_stop: ["echo bye", mvm.hook("sync"), ["kill", "1"]],
    env: { MODEL: "m", API_KEY: mvm.secret("api-key", { var: "API_KEY" }) },
  })(function math() {});
  const ir = mvm.toIr();
  assert.equal(ir.id, "math-svc");
  const app = ir.apps[0];
  assert.deepEqual(app.entrypoints.map((e) => [e.name, e.primary]), [["add-one", true], ["main", false]]);
  assert.deepEqual(app.hooks.before_build, [{ kind: "argv", argv: ["npm", "ci"] }]);
  assert.deepEqual(app.hooks.before_start, [{ kind: "shell", line: "node migrate.js" }]);
  assert.deepEqual(app.hooks.before_stop.length, 3);
  assert.deepEqual(app.env, {
    MODEL: { kind: "literal", value: "m" },
    API_KEY: { kind: "secret_ref", name: "api-key", type: "token", header: null, hosts: [] },
  });
});

test("secret bindings reach the IR, copied", () => {
  const bound = mvm.secret("openai-api-key", { var: "OPENAI_API_KEY", type: "bearer", hosts: ["api.openai.com"] });
  mvm.app({ network: mvm.network({ mode: "deny", allowHttps: ["api.openai.com"] }), env: { OPENAI_API_KEY: bound } })(() => null);
  const expected = { kind: "secret_ref", name: "openai-api-key", type: "bearer", header: null, hosts: ["api.openai.com"] };
  assert.deepEqual(mvm.toIr().apps[0].env.OPENAI_API_KEY, expected);
  bound.value.hosts.push("x.example");
  assert.deepEqual(mvm.toIr().apps[0].env.OPENAI_API_KEY, expected);
});

test("argument errors", () => {
  assert.equal(codeOf(() => mvm.app({ nmae: "x" })), "E_KWARG_UNKNOWN");
  assert.equal(codeOf(() => mvm.app({ entrypoint: mvm.entrypoint({ command: ["a"] }), entrypoints: [] })), "E_KWARG_CONFLICT");
  assert.equal(codeOf(() => mvm.app({ resources: mvm.network() })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.app({ env: { T: mvm.secret("t", { var: "OTHER" }) } })), "E_SECRET_VAR_MISMATCH");
  assert.equal(codeOf(() => mvm.toIr()), "E_NO_DECLARATION");
});

test("two apps in one file", () => {
  const first = mvm.app({})(() => 1);
  assert.equal(first(), 1);
  assert.equal(codeOf(() => mvm.app({})(() => 2)), "E_APPS_COUNT");
});

const GRANTED = mvm.network({ mode: "deny", allowHttps: ["a.example", "b.example"] });

const VALIDATION = [
  [{ name: "Bad_Name" }, "E_ID_INVALID"],
  [{ network: mvm.network({ mode: "bridge", egress: [mvm.hostPort("*.example.com", 443)] }) }, "E_NETWORK_WILDCARD"],
  [{ network: mvm.network({ mode: "bridge", egress: [mvm.hostPort("10.0.0.0/8", 443)] }) }, "E_NETWORK_WILDCARD"],
  [{ network: mvm.network({ mode: "bridge", egress: [mvm.hostPort("[::]", 443)] }) }, "E_NETWORK_WILDCARD"],
  [{ network: mvm.network({ mode: "bridge", egress: [mvm.hostPort("https://a.com", 443)] }) }, "E_INVALID_VALUE"],
  [{ network: mvm.network({ mode: "none", ports: [mvm.port(80)] }) }, "E_NETWORK_EGRESS_CLOSED"],
  [{ source: mvm.localPath("~/code") }, "E_SOURCE_ESCAPES"],
  [{ dependencies: mvm.pythonDeps({ lockfile: "../uv.lock" }) }, "E_INVALID_VALUE"],
  [{ network: mvm.network({ mode: "none", dns: mvm.dnsSystem() }) }, "E_DNS_WITHOUT_NETWORK"],
  [{ network: mvm.network({ mode: "host" }) }, "E_HOST_NETWORK_UNTRUSTED"],
  [{ resources: mvm.resources({ memory_mb: 32 }) }, "E_RESOURCES_RANGE"],
  [{ source: mvm.localPath("../x") }, "E_SOURCE_ESCAPES"],
  [{ env: { "1BAD": "x" } }, "E_ENV_NAME_INVALID"],
  [{ env: { K: mvm.secret("Bad Name") } }, "E_SECRET_NAME_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { type: "header", hosts: ["a.example"] }) } }, "E_SECRET_HEADER_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { type: "basic", header: "X-K", hosts: ["a.example"] }) } }, "E_SECRET_HEADER_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { type: "header", header: "X K", hosts: ["a.example"] }) } }, "E_SECRET_HEADER_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { type: "header", header: "Transfer-Encoding" }) } }, "E_SECRET_HEADER_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { hosts: ["a.example:443"] }) } }, "E_SECRET_HOST_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { hosts: [""] }) } }, "E_SECRET_HOST_INVALID"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { hosts: ["*.example"] }) } }, "E_NETWORK_WILDCARD"],
  [{ network: GRANTED, env: { K: mvm.secret("k", { hosts: ["c.example"] }) } }, "E_SECRET_HOST_NOT_GRANTED"],
  [{ env: { K: mvm.secret("k", { hosts: ["a.example"] }) } }, "E_SECRET_HOST_NOT_GRANTED"],
  [
    {
      network: GRANTED,
      env: { K: mvm.secret("k", { type: "bearer", hosts: ["a.example"] }), L: mvm.secret("l", { type: "header", header: "authorization" }) },
    },
    "E_SECRET_BINDING_CONFLICT",
  ],
  [{ entrypoint: mvm.entrypoint({ command: [] }) }, "E_EMPTY_COMMAND"],
  [{ image: mvm.nixPackages(["not a name"]) }, "E_INVALID_VALUE"],
  [
    { entrypoints: [mvm.entrypointFunction({ module: "m", function: "a" }), mvm.entrypointFunction({ module: "m", function: "b" })] },
    "E_PRIMARY_ENTRYPOINT",
  ],
];

for (const [opts, code] of VALIDATION) {
  test(`validation: ${code} for ${JSON.stringify(opts).slice(0, 60)}`, () => {
    const fn = mvm.app(opts)(() => null);
    assert.equal(typeof fn, "function");
    assert.equal(codeOf(() => mvm.toIr()), code);
  });
}

test("the first error is the first in JSON pointer order", () => {
  mvm.app({ name: "Bad", env: { "1BAD": "x" } })(() => null);
  assert.equal(codeOf(() => mvm.toIr()), "E_ENV_NAME_INVALID");
});

test("moduleName is the file name without extension", async () => {
  const { moduleName } = await import("../dist/declaration.js");
  assert.equal(moduleName("/p/app.ts"), "app");
  assert.equal(moduleName("/p/src/tool.mts"), "tool");
});

test("emitJson prints canonical bytes without a newline, under tsx", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-sdk-"));
  fs.mkdirSync(path.join(dir, "node_modules"));
  fs.symlinkSync(PKG, path.join(dir, "node_modules", "mvm-sdk"));
  fs.writeFileSync(
    path.join(dir, "tool.ts"),
    [
      'import * as mvm from "mvm-sdk";',
      "",
      "export const run_tool = mvm.app({",
      '  env: { API_KEY: "x" },',
      "})((prompt: string): string => prompt);",
      "",
      "mvm.emitJson();",
      "",
    ].join("\n"),
  );
  const proc = spawnSync(path.join(PKG, "node_modules", ".bin", "tsx"), ["tool.ts"], { cwd: dir });
  assert.equal(proc.status, 0, proc.stderr.toString());
  const out = proc.stdout.toString();
  assert.ok(!out.endsWith("\n"));
  const ir = JSON.parse(out);
  assert.equal(ir.apps[0].name, "run-tool");
  assert.equal(ir.apps[0].entrypoints[0].module, "tool");
  assert.equal(ir.apps[0].entrypoints[0].function, "run_tool");
  assert.equal(mvm.canonicalJson(ir), out);
  assert.match(proc.stderr.toString(), /W_SECRET_LITERAL/);
});
