import * as mvm from "mvm-sdk";

export const handler = mvm.app({
  name: "defaults",
  image: mvm.nodeImage({ node: "22" }),
  network: mvm.network({ mode: "deny", allowHttps: ["registry.npmjs.org"] }),
})(function handler(event: Record<string, unknown>) {
  return event;
});
