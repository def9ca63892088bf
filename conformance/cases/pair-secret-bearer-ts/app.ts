import * as mvm from "mvm-sdk";

// The public project's form: the key is sent as a bearer token, to OpenAI only.
export const run = mvm.app({
  name: "agent-tool",
  image: mvm.nixPackages(["python312", "uv"]),
  network: mvm.network({ mode: "deny", allowHttps: ["api.openai.com"] }),
  env: {
    OPENAI_API_KEY: mvm.secret("openai-api-key", { var: "OPENAI_API_KEY", type: "bearer", hosts: ["api.openai.com"] }),
  },
  entrypoint: mvm.entrypointFunction({ module: "tool", function: "run", primary: true }),
})((prompt: string): string => prompt);
