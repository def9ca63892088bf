import * as mvm from "mvm-sdk";

export default mvm.app({ name: "anon" })(function run(input: string) {
  return input;
});
