import * as mvm from "mvm-sdk";

const version = "3.12";

export const f = mvm.app({
  name: "tmpl",
  image: mvm.pythonImage({ python: `${version}` }),
})(() => 1);
