// webFetch / webSearch against a stand-in for the guest agent's broker
// socket: the framing, the call's shape, refusals as named WebErrors. The
// host side is tested with real microVMs (crates/mvmctl/tests/secrets_vm.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as mvm from "../dist/index.js";

function fakeBroker(answer) {
  const path = join(mkdtempSync(join(tmpdir(), "mvm-broker-")), "broker.sock");
  const calls = [];
  const server = createServer((c) => {
    let buf = Buffer.alloc(0);
    c.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
      const call = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString());
      calls.push(call);
      const out = Buffer.from(JSON.stringify(answer(call)));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(out.length);
      c.end(Buffer.concat([head, out]));
    });
  });
  return new Promise((resolve) => server.listen(path, () => {
    process.env.MVM_BROKER_SOCKET = path;
    resolve({ calls, close: () => server.close() });
  }));
}

test("webFetch sends the call and returns the answer", async () => {
  const b = await fakeBroker(() => ({
    outcome: "fetched", status: 200, headers: [["content-type", "application/json"]],
    body: Buffer.from('{"ok":true}').toString("base64"),
  }));
  const r = await mvm.webFetch("https://api.example/v1", {
    method: "post", headers: { authorization: "Bearer tok" }, json: { q: 1 }, timeout: 5000,
  });
  assert.deepEqual([r.status, r.ok, r.json(), r.header("Content-Type")], [200, true, { ok: true }, "application/json"]);
  const call = b.calls[0];
  assert.equal(call.call, "web_fetch");
  assert.equal(call.method, "POST");
  assert.equal(call.timeout_ms, 5000);
  assert.deepEqual(call.headers, [["authorization", "Bearer tok"], ["content-type", "application/json"]]);
  assert.deepEqual(JSON.parse(Buffer.from(call.body, "base64").toString()), { q: 1 });
  b.close();
});

for (const code of ["EgressDenied", "SecretNotAllowed", "Timeout"]) {
  test(`a ${code} refusal rejects with that WebError`, async () => {
    const b = await fakeBroker(() => ({ outcome: "failed", code, message: `no: ${code}` }));
    await assert.rejects(mvm.webFetch("https://elsewhere.example/"), (e) =>
      e instanceof mvm.WebError && e.code === code && e.name === code && e.message === `no: ${code}`);
    b.close();
  });
}

test("webSearch returns title, url and snippet", async () => {
  const b = await fakeBroker(() => ({ outcome: "searched", results: [{ title: "T", url: "https://r.example/", snippet: "s" }] }));
  assert.deepEqual(await mvm.webSearch("rust microvm", { maxResults: 3 }), [{ title: "T", url: "https://r.example/", snippet: "s" }]);
  assert.deepEqual(b.calls[0], { call: "web_search", query: "rust microvm", max_results: 3 });
  b.close();
});

test("outside a microVM webFetch is Unavailable", async () => {
  process.env.MVM_BROKER_SOCKET = join(tmpdir(), "mvm-no-such-broker.sock");
  await assert.rejects(mvm.webFetch("https://api.example/"), (e) => e instanceof mvm.WebError && e.code === "Unavailable");
});
