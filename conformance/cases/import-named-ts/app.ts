import {
  addon,
  app,
  dnsSystem,
  egress,
  entrypoint,
  hook,
  hostPort as hp,
  literal,
  localPath,
  network,
  nixPackages as nix,
  noDeps,
  port,
  resources,
  secret,
  workload,
} from "mvm-sdk";

workload({ id: "pair-full" });

export const pair = app({
  name: "pair",
  source: localPath(".", { include: ["app.*", "lib/**"], exclude: ["lib/tests/**"] }),
  image: nix(["python312", "nodejs_22", "uv"]),
  resources: resources({ cpuCores: 2, memoryMb: 1024, rootfsSizeMb: 2048 }),
  dependencies: noDeps(),
  network: network({
    mode: "bridge",
    ports: [port(8080)],
    egress: egress([hp("api.example.com", 443)]),
    dns: dnsSystem(),
  }),
  env: { MODE: "prod", TOKEN: secret("pair-token", { var: "TOKEN" }), "LEVEL": literal("debug") },
  entrypoint: entrypoint({ command: ["/app/run.sh"], name: "run" }),
  beforeBuild: ["make", "build"],
  beforeStart: [hook("echo boot"), ["true"]],
  afterStart: hook(["test", "-f", "/tmp/ready"]),
  before_stop: "sync",
  addons: [addon({ name: "extra", path: "addons/extra", beforeStart: "echo addon" })],
  threatTier: "untrusted",
})(async (): Promise<void> => {});
