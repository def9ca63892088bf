import * as mvm from "mvm-sdk";

const NAME = "hello";

export const f = mvm.app({ name: NAME })(() => 1);
