// The npm-dependency example with pnpm: the builder runs the pinned pnpm
// (`npm exec pnpm@…`) on pnpm-lock.yaml inside the builder microVM.
import * as mvm from "mvm-sdk";
import ms from "ms";

export const ago = mvm.app({
  name: "pnpm-node",
  source: mvm.localPath(".", { include: ["app.ts", "package.json", "pnpm-lock.yaml"] }),
  image: mvm.node_image({ node: "22" }),
  resources: mvm.resources({ cpu: 1, memory_mb: 256, rootfs_size_mb: 512 }),
  dependencies: mvm.node_deps({ lockfile: "pnpm-lock.yaml", tool: "pnpm" }),
  entrypoint: mvm.entrypoint_function({ module: "app", function: "ago", primary: true }),
})((millis: number): string => `${ms(millis, { long: true })} ago`);
