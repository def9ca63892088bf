import * as mvm from "mvm-sdk";

// Header names compare case-insensitively; no hosts means every grant.
export const f = mvm.app({
  name: "secrets",
  network: mvm.network({ mode: "deny", allowHttps: ["api.example.com"] }),
  env: {
    A_KEY: mvm.secret("a-key", { type: "header", header: "X-Api-Key", hosts: ["api.example.com"] }),
    B_KEY: mvm.secret("b-key", { type: "header", header: "x-api-key" }),
  },
})(() => 1);
