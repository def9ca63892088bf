import * as mvm from "mvm-sdk";

export const f = mvm.app({
  name: "typo",
  resources: mvm.resources({ cpu: 1, memoryMB: 512 }),
})(() => 1);
