// The TypeScript SDK's create -> first commands.run("true") through a real
// `mvmctl serve` (MVM_API_URL), for benches/api/main.rs. Prints JSON.
import { Sandbox } from "../../../../sdk/typescript/dist/index.js";

const n = Number(process.argv[2] ?? 10);
const create = [];
for (let i = 0; i < n; i++) {
  const t = performance.now();
  const sb = await Sandbox.create({ template: "python-3.13", timeout: 600 });
  await sb.commands.run("true");
  create.push((performance.now() - t) / 1000);
  await sb.kill();
}
console.log(JSON.stringify({ create_first_run_s: create }));
