import * as mvm from "mvm-sdk";

export const f = mvm.app({ name: "broken", )(() => 1);
