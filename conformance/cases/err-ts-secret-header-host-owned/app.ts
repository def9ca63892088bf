import * as mvm from "mvm-sdk";

export const f = mvm.app({
  name: "secrets",
  network: mvm.network({ mode: "deny", allowHttps: ["api.search.example"] }),
  env: { SEARCH_KEY: mvm.secret("search-key", { type: "header", header: "Host", hosts: ["api.search.example"] }) },
})(() => 1);
