// Host and path classification, with the vectors of mvm_ir's own tests.
import assert from "node:assert/strict";
import { test } from "node:test";

import { headerProblem, hostProblem, sourceEscape } from "../dist/validate.js";

const WILDCARDS = ["*", "*.example.com", "api.*", "0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0", "0.0.0.0/0", "::/0", "10.0.0.0/8"];
const HOSTS = ["example.com", "pypi.org.", "10.0.0.1", "::1", "[2001:db8::1]", "_dmarc.example.com", "localhost", "1.2.3"];
const INVALID = ["", ".", "a..b", "-a.com", "a-.com", "exa mple.com", "https://example.com", "a".repeat(64), "a:b", "fe80::1%eth0"];

test("wildcard hosts", () => WILDCARDS.forEach((h) => assert.equal(hostProblem(h)?.[0], "wildcard", h)));
test("valid hosts", () => HOSTS.forEach((h) => assert.equal(hostProblem(h), null, h)));
test("invalid hosts", () => INVALID.forEach((h) => assert.equal(hostProblem(h)?.[0], "invalid", h)));

test("source paths", () => {
  for (const ok of ["", ".", "src", "./app", "a/b.c/d", "..foo", "foo.."]) assert.equal(sourceEscape(ok), null, ok);
  for (const bad of ["/", "/home/me", "~", "~/code", "..", "../x", "a/../b", "a/..", "C:\\x", "a\\..\\b", "\\\\srv\\x"]) assert.notEqual(sourceEscape(bad), null, bad);
});

test("header names", () => {
  // The vectors of mvm_ir's validate/secrets.rs.
  for (const ok of ["X-Api-Key", "x_token", "Authorization", "a!#$%&'*+-.^_`|~9"]) assert.equal(headerProblem(ok), null, ok);
  for (const bad of ["", "X Api", "X-Api:", "Ключ", "a\r\nb", '"q"']) assert.notEqual(headerProblem(bad), null, bad);
  for (const owned of ["Host", "CONTENT-LENGTH", "te", "Proxy-Authorization"]) {
    assert.equal(headerProblem(owned), "is a header the host sets itself on every request", owned);
  }
});

test("an unbound secret is a warning with the compiler's words", async () => {
  const mvm = await import("../dist/index.js");
  const { validate } = await import("../dist/validate.js");
  mvm.reset();
  mvm.app({ network: mvm.network({ mode: "deny", allowHttps: ["a.example"] }), env: { K: mvm.secret("k", { type: "basic" }) } })(function probe() {});
  const found = validate(mvm.toIr());
  mvm.reset();
  assert.deepEqual(
    found.map((f) => [f.code, f.severity, f.path, f.message]),
    [["W_SECRET_UNBOUND", "warning", "/apps/0/env/K/hosts", 'secret "k" has type "basic" and no hosts: the host adds it to every request to any of the app\'s egress grants']],
  );
});
