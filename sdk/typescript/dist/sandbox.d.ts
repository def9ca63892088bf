/**
 * The runtime SDK: `Sandbox.create(...)` and its operations. Only record
 * mode exists so far: with MVM_SDK_MODE=record every call is recorded and
 * the recording is written to MVM_SDK_OUT_PATH when the process exits
 * (docs/recording.md). Nothing is executed in record mode.
 */
import { type SandboxOptions } from "./recording.js";
export type { SandboxOptions };
/** What commands.run/start return in record mode: the command was recorded, not run. */
export declare class CommandHandle {
    readonly cmd: string | string[];
    readonly background: boolean;
    /** Record mode runs nothing, so there is no output or exit status to report. */
    readonly recorded = true;
    constructor(cmd: string | string[], background: boolean);
}
export declare class Commands {
    private readonly sandbox;
    constructor(sandbox: Sandbox);
    /** Run `cmd` (a shell line or an argv array) and wait for it. */
    run(cmd: string | string[]): Promise<CommandHandle>;
    /** Start `cmd` in the background (e.g. a server). */
    start(cmd: string | string[]): Promise<CommandHandle>;
}
export declare class Files {
    private readonly sandbox;
    constructor(sandbox: Sandbox);
    /** Write `data` (strings are UTF-8 encoded) to the absolute guest `path`. */
    write(path: string, data: string | Uint8Array): Promise<void>;
}
/** One sandbox microVM. Create it with `await Sandbox.create({...})`. */
export declare class Sandbox {
    #private;
    private readonly spec;
    readonly commands: Commands;
    readonly files: Files;
    private constructor();
    static create(opts?: SandboxOptions): Promise<Sandbox>;
    /** @internal Append one operation; refused after kill. */
    record(op: any): CommandHandle;
    /** Stop the sandbox. Killing twice is allowed and records one kill. */
    kill(): Promise<void>;
    /** `await using sb = await Sandbox.create(...)` kills it at the end of the block. */
    [Symbol.asyncDispose](): Promise<void>;
}
