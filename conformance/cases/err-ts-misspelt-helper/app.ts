import * as mvm from "mvm-sdk";

export const f = mvm.app({
  name: "typo",
  source: mvm.locaPath("."),
})(() => 1);
