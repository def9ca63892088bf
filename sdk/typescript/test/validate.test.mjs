// Host and path classification, with the vectors of mvm_ir's own tests.
import assert from "node:assert/strict";
import { test } from "node:test";

import { hostProblem, sourceEscape } from "../dist/validate.js";

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
