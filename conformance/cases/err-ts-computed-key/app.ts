import * as mvm from "mvm-sdk";

const KEY = "API_KEY";

export const f = mvm.app({ name: "computed", env: { [KEY]: "x" } })(() => 1);
