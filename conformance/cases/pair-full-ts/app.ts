import * as mvm from "mvm-sdk";

mvm.workload({ id: "pair-full" });

export const pair = mvm.app({
  name: "pair",
  source: mvm.localPath(".", { include: ["app.*", "lib/**"], exclude: ["lib/tests/**"] }),
  image: mvm.nixPackages(["python312", "nodejs_22", "uv"]),
  resources: mvm.resources({ cpuCores: 2, memoryMb: 1024, rootfsSizeMb: 2048 }),
  dependencies: mvm.noDeps(),
  network: mvm.network({
    mode: "bridge",
    ports: [mvm.port(8080)],
    egress: mvm.egress([mvm.hostPort("api.example.com", 443)]),
    dns: mvm.dnsSystem(),
  }),
  env: { MODE: "prod", TOKEN: mvm.secret("pair-token", { var: "TOKEN" }), "LEVEL": mvm.literal("debug") },
  entrypoint: mvm.entrypoint({ command: ["/app/run.sh"], name: "run" }),
  beforeBuild: ["make", "build"],
  beforeStart: [mvm.hook("echo boot"), ["true"]],
  afterStart: mvm.hook(["test", "-f", "/tmp/ready"]),
  before_stop: "sync",
  addons: [mvm.addon({ name: "extra", path: "addons/extra", beforeStart: "echo addon" })],
  threatTier: "untrusted",
})(async (): Promise<void> => {});
