import * as mvm from "mvm-sdk";

export const f = mvm.app({
  name: "secrets",
  network: mvm.network({ mode: "deny", allowHttps: ["api.openai.com"] }),
  env: { OPENAI_API_KEY: mvm.secret("openai-api-key", { type: "bearer", hosts: "api.openai.com" }) },
})(() => 1);
