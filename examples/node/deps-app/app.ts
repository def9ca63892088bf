// A TypeScript function whose npm dependency comes from package-lock.json,
// installed by `npm ci` in the builder microVM behind the egress gate.
import * as mvm from "mvm-sdk";
import ms from "ms";

export const ago = mvm.app({
  name: "deps-node",
  source: mvm.localPath(".", { include: ["app.ts", "package.json", "package-lock.json"] }),
  image: mvm.node_image({ node: "22" }),
  resources: mvm.resources({ cpu: 1, memory_mb: 256, rootfs_size_mb: 512 }),
  dependencies: mvm.node_deps({ lockfile: "package-lock.json", tool: "npm" }),
  entrypoint: mvm.entrypoint_function({ module: "app", function: "ago", primary: true }),
})((millis: number): string => `${ms(millis, { long: true })} ago`);
