import * as mvm from "mvm-sdk";

export const strings = mvm.app({
  env: {
    ESCAPES: "tab\there\nnewline \u00e9 \x41 \u{1F600}",
    TEMPLATE: `no interpolation here`,
    SINGLE: 'it\'s',
  } as const,
})(() => null);
