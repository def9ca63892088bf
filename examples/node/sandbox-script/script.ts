// An imperative Sandbox script with no mvm.app declaration. `mvmctl compile
// script.ts --allow-host-run` records it: it runs this file ON THE HOST under
// tsx/bun/deno with MVM_SDK_MODE=record (and warns that it does), then
// compiles the recording. Without the flag it is refused. See docs/recording.md.
import { Sandbox } from "mvm-sdk";

await using sb = await Sandbox.create({
  template: "node-22",
  env: { GREETING: "hello" },
  resources: { cpu_cores: 1, memory_mb: 256, rootfs_size_mb: 512 },
});
await sb.files.write("/app/server.mjs", "console.log(process.env.GREETING);\nsetInterval(() => {}, 1 << 30);\n");
await sb.commands.start(["node", "/app/server.mjs"]);
