import * as mvm from "mvm-sdk";

export const summarise = mvm.app({
  dependencies: mvm.nodeDeps({ tool: "pnpm" }),
})((text: string) => text.slice(0, 10));
