import * as mvm from "mvm-sdk";

export const search = mvm.app({
  name: "search-tool",
  image: mvm.nixPackages(["python312"]),
  network: mvm.network({ mode: "deny", allow_https: ["api.search.example", "registry.example.com"] }),
  env: {
    SEARCH_KEY: mvm.secret("search-key", { type: "header", header: "X-Subscription-Token", hosts: ["api.search.example"] }),
    REGISTRY_AUTH: mvm.secret("registry-login", { type: "basic", hosts: ["registry.example.com"] }),
    // The default: only where the guest puts the token itself.
    PLAIN_TOKEN: mvm.secret("plain-token", { type: "token" }),
  },
  entrypoint: mvm.entrypoint({ command: ["python3", "/app/app.py"] }),
})(() => undefined);
