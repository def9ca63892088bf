// How long importing mvm-sdk and emitJson take (target: import <= 50 ms).
// Every sample is a fresh Node process:
// - import, in-process: performance.now() around `await import("mvm-sdk")`;
// - each TypeScript seed example of the conformance corpus, under tsx:
//   importing the declaration module (which imports mvm-sdk and declares
//   the app) plus emitJson().
// Run after `npm ci`: node bench/bench.mjs [samples]
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PKG = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CASES = path.join(PKG, "..", "..", "conformance", "cases");
const n = Number(process.argv[2] ?? 20);

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mvm-sdk-bench-"));
fs.mkdirSync(path.join(scratch, "node_modules"));
fs.symlinkSync(PKG, path.join(scratch, "node_modules", "mvm-sdk"));
fs.writeFileSync(path.join(scratch, "package.json"), '{"type": "module"}');
fs.writeFileSync(
  path.join(scratch, "import.mjs"),
  `const t = performance.now(); await import("mvm-sdk"); console.log(performance.now() - t);\n`,
);
fs.writeFileSync(
  path.join(scratch, "declare.mjs"),
  `const t = performance.now();
const mvm = await import("mvm-sdk");
const write = process.stdout.write;
process.stdout.write = () => true;
await import(process.argv[2]);
mvm.emitJson();
process.stdout.write = write;
console.log(performance.now() - t);\n`,
);

function sample(cmd, args) {
  const p = spawnSync(cmd, args, { cwd: scratch, encoding: "utf8" });
  if (p.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${p.stderr}`);
  return Number(p.stdout.trim().split("\n").pop());
}

function summary(xs) {
  xs.sort((a, b) => a - b);
  const median = xs[Math.floor(xs.length / 2)];
  const p90 = xs[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];
  return `median ${median.toFixed(2).padStart(7)} ms  p90 ${p90.toFixed(2).padStart(7)} ms  (n=${xs.length})`;
}

console.log(`node ${process.version}`);
console.log("import mvm-sdk, in-process  ", summary(Array.from({ length: n }, () => sample(process.execPath, ["import.mjs"]))));
const tsx = path.join(PKG, "node_modules", ".bin", "tsx");
const seeds = fs.readdirSync(CASES).filter((c) => c.startsWith("seed") && fs.existsSync(path.join(CASES, c, "app.ts"))).sort();
for (const c of seeds) {
  fs.cpSync(path.join(CASES, c), path.join(scratch, c), { recursive: true });
  const file = "./" + c + "/app.ts";
  console.log(c.padEnd(28), summary(Array.from({ length: n }, () => sample(tsx, ["declare.mjs", file]))));
}
fs.rmSync(scratch, { recursive: true, force: true });
