/**
 * The runtime SDK: `Sandbox.create(...)` and its operations. Only record
 * mode exists so far: with MVM_SDK_MODE=record every call is recorded and
 * the recording is written to MVM_SDK_OUT_PATH when the process exits
 * (docs/recording.md). Nothing is executed in record mode.
 */
import { SandboxError } from "./errors.js";
import { runOp, sandboxSpec, session, writeOp } from "./recording.js";
/** What commands.run/start return in record mode: the command was recorded, not run. */
export class CommandHandle {
    cmd;
    background;
    /** Record mode runs nothing, so there is no output or exit status to report. */
    recorded = true;
    constructor(cmd, background) {
        this.cmd = cmd;
        this.background = background;
    }
}
export class Commands {
    sandbox;
    constructor(sandbox) {
        this.sandbox = sandbox;
    }
    /** Run `cmd` (a shell line or an argv array) and wait for it. */
    async run(cmd) {
        return this.sandbox.record(runOp(cmd, false));
    }
    /** Start `cmd` in the background (e.g. a server). */
    async start(cmd) {
        return this.sandbox.record(runOp(cmd, true));
    }
}
export class Files {
    sandbox;
    constructor(sandbox) {
        this.sandbox = sandbox;
    }
    /** Write `data` (strings are UTF-8 encoded) to the absolute guest `path`. */
    async write(path, data) {
        this.sandbox.record(writeOp(path, data));
    }
}
/** One sandbox microVM. Create it with `await Sandbox.create({...})`. */
export class Sandbox {
    spec;
    commands = new Commands(this);
    files = new Files(this);
    #killed = false;
    constructor(spec) {
        this.spec = spec;
    }
    static async create(opts = {}) {
        const mode = process.env.MVM_SDK_MODE ?? "";
        if (mode !== "record") {
            throw new SandboxError(`the runtime SDK's live mode is not available yet (MVM_SDK_MODE=${JSON.stringify(mode)}); ` +
                "run this script with MVM_SDK_MODE=record (mvmctl compile --from-recording) " +
                "or manage instances with mvmctl up / exec / down");
        }
        const spec = sandboxSpec(opts);
        session().sandboxes.push(spec);
        return new Sandbox(spec);
    }
    /** @internal Append one operation; refused after kill. */
    record(op) {
        if (this.#killed)
            throw new SandboxError("this sandbox was killed; create a new one with Sandbox.create(...)");
        this.spec.operations.push(op);
        return new CommandHandle(op.cmd, op.background);
    }
    /** Stop the sandbox. Killing twice is allowed and records one kill. */
    async kill() {
        if (!this.#killed) {
            this.#killed = true;
            this.spec.operations.push({ op: "kill" });
        }
    }
    /** `await using sb = await Sandbox.create(...)` kills it at the end of the block. */
    async [Symbol.asyncDispose]() {
        await this.kill();
    }
}
