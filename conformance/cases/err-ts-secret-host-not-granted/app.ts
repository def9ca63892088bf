import * as mvm from "mvm-sdk";

// mode "deny" without allow_https has no grants at all.
export const f = mvm.app({
  name: "secrets",
  network: mvm.network({ mode: "deny" }),
  env: { OPENAI_API_KEY: mvm.secret("openai-api-key", { hosts: ["api.openai.com"] }) },
})(() => 1);
