import { Sandbox } from "mvm-sdk";

const sb = await Sandbox.create({ image: "python312" });
await sb.exec(["echo", "hi"]);
