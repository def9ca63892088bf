import * as sdk from "mvm-sdk";

export const greet = sdk.app({
  name: "hello-app",
  source: sdk.localPath("."),
  image: sdk.python_image({ python: "3.12" }),
  resources: sdk.resources({ cpu: 1, memory_mb: 256 }),
  entrypoint: sdk.entrypoint_function({
    module: "app",
    function: "greet",
    primary: true,
  }),
  before_start: "export HELLO_BANNER='hi'",
})((name: string): string => `hello ${name}`);
