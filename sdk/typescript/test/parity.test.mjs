// Parity with the static compiler: every TypeScript case of the conformance
// corpus, run in-process through the SDK under tsx, must give the same
// canonical bytes (expected.json) or the same error code
// (expected_error.json). The corpus is <repo>/conformance/cases (override:
// MVM_CONFORMANCE_DIR) and grows over time; whatever cases exist are run.
//
// Cases are copied to a scratch directory that resolves "mvm-sdk" to this
// package, then one tsx process imports each case in turn (one process:
// tsx start-up dominates the run time) and reports its IR or error code.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PKG = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CASES = process.env.MVM_CONFORMANCE_DIR ?? path.join(PKG, "..", "..", "conformance", "cases");

// Codes only a static reader can give: in-process, names and expressions are
// already evaluated before mvm sees the values; a misspelt helper on an ES
// module namespace is just `undefined` (a TypeError when called); the
// lockfile check belongs to the compile output.
const STATIC_ONLY = new Set(["E_NOT_LITERAL", "E_LOCKFILE_MISSING", "E_HELPER_UNKNOWN"]);

const RUNNER = `
import * as fs from "node:fs";
import * as mvm from "mvm-sdk";
function codeOf(e) {
  // tsx reports a file that does not parse as esbuild's "Transform failed".
  const syntax = e instanceof SyntaxError || /^Transform failed with \\d+ error/.test(String(e?.message));
  return e instanceof mvm.DeclarationError ? e.code : syntax ? "E_SYNTAX" : null;
}
const results = {};
const declarations = JSON.parse(process.argv[2]);
for (const name of Object.keys(declarations)) {
  mvm.reset();
  let failure = null;
  try {
    await import("./" + name + "/" + declarations[name]);
  } catch (e) {
    failure = e;
  }
  try {
    const ir = mvm.canonicalJson(mvm.toIr());
    results[name] = failure ? { code: codeOf(failure), message: String(failure.message), declared: true } : { ir, declared: true };
  } catch (e) {
    const declared = !(e instanceof mvm.DeclarationError && e.code === "E_NO_DECLARATION");
    const err = failure ?? e;
    results[name] = { code: codeOf(err), message: String(err && err.message), declared };
  }
}
fs.writeFileSync(process.argv[3], JSON.stringify(results));
`;

// declaration.txt names the declaration file when it is not app.py/app.ts.
function declarationOf(name) {
  const named = path.join(CASES, name, "declaration.txt");
  return fs.existsSync(named) ? fs.readFileSync(named, "utf8").trim() : "app.ts";
}

const EXPECTED = ["expected.json", "expected_error.json", "expected_no_declaration"];
const cases = fs.existsSync(CASES)
  ? fs
      .readdirSync(CASES)
      .filter((n) => /\.[mc]?ts$/.test(declarationOf(n)) && fs.existsSync(path.join(CASES, n, declarationOf(n))))
      .filter((n) => EXPECTED.some((f) => fs.existsSync(path.join(CASES, n, f))))
      .sort()
  : [];

let results = {};
if (cases.length) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-parity-"));
  fs.mkdirSync(path.join(scratch, "node_modules"));
  fs.symlinkSync(PKG, path.join(scratch, "node_modules", "mvm-sdk"));
  fs.writeFileSync(path.join(scratch, "package.json"), '{"type": "module"}');
  fs.writeFileSync(path.join(scratch, "run.mjs"), RUNNER);
  for (const name of cases) fs.cpSync(path.join(CASES, name), path.join(scratch, name), { recursive: true });
  const out = path.join(scratch, "results.json");
  const proc = spawnSync(path.join(PKG, "node_modules", ".bin", "tsx"), ["run.mjs", JSON.stringify(Object.fromEntries(cases.map((n) => [n, declarationOf(n)]))), out], { cwd: scratch });
  assert.equal(proc.status, 0, proc.stderr.toString());
  results = JSON.parse(fs.readFileSync(out, "utf8"));
}

// An empty or missing corpus must fail, not pass with nothing compared.
test("conformance corpus present", () => {
  assert.ok(cases.length >= 10, `expected TypeScript cases with expected files under ${CASES}`);
});

for (const name of cases) {
  const dir = path.join(CASES, name);
  const errorFile = path.join(dir, "expected_error.json");
  const expected = fs.existsSync(errorFile) ? JSON.parse(fs.readFileSync(errorFile, "utf8")) : null;
  const todo = expected && STATIC_ONLY.has(expected.code) ? `${expected.code} is detected only by the static compiler` : false;
  test(`case ${name}`, { todo }, () => {
    const got = results[name];
    if (fs.existsSync(path.join(dir, "expected_no_declaration"))) {
      // The static compiler's "no declaration" outcome (the CLI falls back to
      // recording); in-process there is nothing to emit.
      // The script may go on to do other things (here, runtime-SDK calls
      // that fail outside record mode); what matters is that no app exists.
      assert.equal(got.declared, false, got.ir ?? got.message);
    } else if (expected) {
      assert.equal(got.code, expected.code, got.ir ? `SDK accepted it: ${got.ir}` : got.message);
    } else {
      assert.ok(got.ir !== undefined, `${got.code}: ${got.message}`);
      assert.equal(got.ir, fs.readFileSync(path.join(dir, "expected.json"), "utf8"));
    }
  });
}
