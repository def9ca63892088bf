// A TypeScript function on a Node 22 image. `mvmctl compile app.ts` reads
// this declaration without running it; in the guest, Node runs the file
// with its types stripped and the agent supplies the `mvm-sdk` import.
import * as mvm from "mvm-sdk";

export const greet = mvm.app({
  name: "hello-node",
  source: mvm.localPath(".", { include: ["app.ts"] }),
  image: mvm.node_image({ node: "22" }),
  resources: mvm.resources({ cpu: 1, memory_mb: 256 }),
  entrypoint: mvm.entrypoint_function({
    module: "app",
    function: "greet",
    primary: true,
  }),
})((name: string): string => `hello ${name} from node`);
