import assert from "node:assert/strict";
import { test } from "node:test";

import * as mvm from "../dist/index.js";

function codeOf(fn) {
  try {
    fn();
  } catch (e) {
    if (e instanceof mvm.DeclarationError) return e.code;
    throw e;
  }
  assert.fail("no DeclarationError thrown");
}

test("localPath: positional path, options, defaults", () => {
  assert.deepEqual(mvm.localPath().value, { kind: "local_path", path: ".", include: ["**"], exclude: [] });
  assert.deepEqual(mvm.local_path("src", { include: ["a/**"] }).value, { kind: "local_path", path: "src", include: ["a/**"], exclude: [] });
  assert.deepEqual(mvm.localPath({ path: "x" }).value.path, "x");
  assert.equal(codeOf(() => mvm.localPath(".", { include: "*.ts" })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.localPath(".", { path: "y" })), "E_KWARG_CONFLICT");
  assert.equal(codeOf(() => mvm.localPath(".", {}, {})), "E_KWARG_CONFLICT");
});

test("images", () => {
  assert.deepEqual(mvm.pythonImage().value, { kind: "nix_packages", packages: ["python313"] });
  assert.deepEqual(mvm.python_image({ python: "3.12", packages: ["uv"] }).value.packages, ["python312", "uv"]);
  assert.deepEqual(mvm.nodeImage({ node: "20" }).value.packages, ["nodejs_20"]);
  assert.deepEqual(mvm.nixPackages(["python312", "uv"]).value, { kind: "nix_packages", packages: ["python312", "uv"] });
  assert.deepEqual(mvm.ociImage("debian:12").value, { kind: "oci_base", reference: "debian:12", digest: null });
  assert.equal(codeOf(() => mvm.pythonImage({ python: "3" })), "E_INVALID_VALUE");
  assert.equal(codeOf(() => mvm.pythonImage({ pyhton: "3.12" })), "E_KWARG_UNKNOWN");
});

test("resources: snake_case, camelCase, cpu alias and conflicts", () => {
  assert.deepEqual(mvm.resources().value, { cpu_cores: 1, memory_mb: 256, rootfs_size_mb: 512 });
  assert.deepEqual(mvm.resources({ cpu: 2, memoryMb: 512, rootfs_size_mb: 1024 }).value, { cpu_cores: 2, memory_mb: 512, rootfs_size_mb: 1024 });
  assert.equal(codeOf(() => mvm.resources({ cpu: 1, cpu_cores: 1 })), "E_KWARG_CONFLICT");
  assert.equal(codeOf(() => mvm.resources({ memory_mb: 1, memoryMb: 1 })), "E_KWARG_CONFLICT");
  assert.equal(codeOf(() => mvm.resources({ memory_mb: "512" })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.resources({ memory_mb: 1.5 })), "E_KWARG_TYPE");
});

test("dependencies", () => {
  assert.deepEqual(mvm.pythonDeps().value, { kind: "python", lockfile: "uv.lock", tool: "uv" });
  assert.equal(mvm.python_deps({ tool: "pip-tools" }).value.tool, "pip_tools");
  assert.deepEqual(mvm.nodeDeps().value, { kind: "node", lockfile: "package-lock.json", tool: "npm" });
  assert.deepEqual(mvm.noDeps().value, { kind: "none" });
  assert.equal(codeOf(() => mvm.nodeDeps({ tool: "bun" })), "E_INVALID_VALUE");
});

test("network lowering", () => {
  assert.deepEqual(mvm.network({ mode: "deny", allow_https: ["b.com", "a.com", "b.com"] }).value, {
    mode: "bridge",
    ports: [],
    egress: { allowlist: [{ host: "a.com", port: 443 }, { host: "b.com", port: 443 }] },
    dns: { kind: "system" },
  });
  assert.equal(mvm.network({ mode: "deny" }).value.mode, "none");
  const net = mvm.network({
    mode: "bridge",
    ports: [mvm.port(8080), { guest: 53, host: 5353, proto: "udp" }],
    egress: mvm.egress([mvm.hostPort("z.com", 443), mvm.host_port("a.com", 80)]),
    dns: mvm.dnsResolver("10.0.0.1"),
  }).value;
  assert.deepEqual(net.ports, [{ guest: 8080, host: 0, proto: "tcp" }, { guest: 53, host: 5353, proto: "udp" }]);
  assert.deepEqual(net.egress.allowlist, [{ host: "a.com", port: 80 }, { host: "z.com", port: 443 }]);
  assert.deepEqual(net.dns, { kind: "resolver", host: "10.0.0.1", port: 53 });
  assert.deepEqual(mvm.dnsSystem().value, { kind: "system" });
  assert.deepEqual(mvm.dns_none().value, { kind: "none" });
  assert.equal(codeOf(() => mvm.network({ mode: "none", allowHttps: ["a.com"] })), "E_KWARG_CONFLICT");
  assert.equal(codeOf(() => mvm.network({ ports: [{ guest: 1, hots: 2 }] })), "E_KWARG_UNKNOWN");
  assert.equal(codeOf(() => mvm.port(0)), "E_INVALID_VALUE");
});

test("env values, hooks, entrypoints, addon", () => {
  assert.deepEqual(mvm.literal("x").value, { kind: "literal", value: "x" });
  assert.equal(mvm.secret("api-key", { var: "API_KEY" }).extra, "API_KEY");
  assert.deepEqual(mvm.secret("api-key").value, { kind: "secret_ref", name: "api-key", type: "token", header: null, hosts: [] });
  assert.deepEqual(mvm.secret("k", { type: "header", header: "X-Key", hosts: ["a.example"] }).value, {
    kind: "secret_ref",
    name: "k",
    type: "header",
    header: "X-Key",
    hosts: ["a.example"],
  });
  assert.equal(codeOf(() => mvm.secret("k", { type: "Bearer" })), "E_INVALID_VALUE");
  assert.equal(codeOf(() => mvm.secret("k", { type: 1 })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.secret("k", { hosts: "a.example" })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.secret("k", { hosts: ["a.example", 3] })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.secret("k", { header: ["X"] })), "E_KWARG_TYPE");
  assert.equal(codeOf(() => mvm.secret("k", { typ: "bearer" })), "E_KWARG_UNKNOWN");
  assert.deepEqual(mvm.hook("echo hi").value, { kind: "shell", line: "echo hi" });
  assert.deepEqual(mvm.hook(["uv", "sync"]).value, { kind: "argv", argv: ["uv", "sync"] });
  assert.equal(mvm.entrypointFunction({ module: "m", function: "f" }).value.kind, "function");
  assert.equal(codeOf(() => mvm.entrypoint_function({ module: "m" })), "E_KWARG_TYPE");
  assert.equal(mvm.entrypoint({ command: ["node", "x.js"] }).value.kind, "command");
  assert.deepEqual(mvm.addon({ name: "ca", path: "addons/ca", beforeBuild: "update-ca-certificates" }).value.hooks.before_build, [
    { kind: "shell", line: "update-ca-certificates" },
  ]);
});
