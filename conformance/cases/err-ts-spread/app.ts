import * as mvm from "mvm-sdk";

const base = { cpu: 1 };

export const f = mvm.app({
  name: "spread",
  resources: mvm.resources({ ...base, memoryMb: 512 }),
})(() => 1);
