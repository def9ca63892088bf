import * as mvm from "mvm-sdk";

export const greetUser = mvm.app({})((name: string) => name);
