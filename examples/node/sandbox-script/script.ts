// An imperative Sandbox script with no mvm.app declaration. `mvmctl compile
// script.ts --allow-host-run` records it: it runs this file ON THE HOST under
// tsx/bun/deno with MVM_SDK_MODE=record (and warns that it does), then
// compiles the recording. Without the flag it is refused. See docs/recording.md.
// Run directly (`npx tsx script.ts`, no MVM_SDK_MODE) it runs live: each call
// in a real sandbox (docs/runtime-sdk.md), printing what the compiled
// workload prints to its console (`mvmctl logs`).
import { Sandbox } from "mvm-sdk";

await using sb = await Sandbox.create({
  template: "node-22",
  env: { GREETING: "hello" },
  resources: { cpu_cores: 1, memory_mb: 256, rootfs_size_mb: 512 },
});
await sb.files.write(
  "/app/server.mjs",
  'import { writeFileSync } from "node:fs";\n' +
    "console.log(process.env.GREETING);\n" +
    'writeFileSync("/tmp/greeting", process.env.GREETING + "\\n");\n' +
    "setInterval(() => {}, 1 << 30);\n",
);
const server = await sb.commands.start(["node", "/app/server.mjs"]);
if (!server.recorded) {
  // The server writes its greeting to a file once it has printed it.
  const ready = await sb.commands.run("until [ -s /tmp/greeting ]; do sleep 0.1; done; cat /tmp/greeting");
  process.stdout.write(ready.stdout);
}
