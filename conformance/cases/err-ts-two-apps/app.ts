import * as mvm from "mvm-sdk";

export const one = mvm.app({ name: "one" })(() => 1);
export const two = mvm.app({ name: "two" })(() => 2);
