/**
 * The runtime SDK: `Sandbox.create(...)` and its operations, in two modes.
 *
 * - **Live** (default): every call goes to the local API, `mvmctl serve`
 *   (docs/api.md), at MVM_API_URL (`unix:/path` or `http://host:port` with
 *   MVM_API_TOKEN), else `$MVM_HOME/api.sock`, where the server is started
 *   in the background when nothing answers (MVM_MVMCTL names the binary).
 * - **Record** (MVM_SDK_MODE=record): every call is recorded and the
 *   recording is written to MVM_SDK_OUT_PATH when the process exits
 *   (docs/recording.md). Nothing is executed; options the recording format
 *   cannot hold are refused, output callbacks are ignored.
 */
import type { Readable } from "node:stream";
import { Client } from "./api.js";
import { Helper } from "./helper.js";
import { type SandboxOptions as RecordOptions } from "./recording.js";
/** `Symbol.asyncDispose` where the runtime has it (Node >= 20.4 / 22), else the well-known registry key TS polyfills use. */
declare const asyncDispose: typeof Symbol.asyncDispose;
export interface SandboxOptions extends RecordOptions {
    /** VAR -> secret name (or mvm.secret(...)), merged into `env` as mvm.secret(name). */
    secrets?: Record<string, string | Helper>;
    /** Added to every command's environment; not part of the image. Live mode only. */
    envs?: Record<string, string>;
    /** TTL in seconds (default 300): the sandbox is killed, or paused, this long after it is ready. */
    timeout?: number;
    /** What the TTL does (default "kill"). */
    onTimeout?: "kill" | "pause";
    /** Kept with the sandbox and returned by `info()`. */
    metadata?: Record<string, string>;
    /** Instance name; default `sb-` and 8 random hex digits (chosen by the server). */
    id?: string;
}
/** A sandbox as the API describes it (docs/api.md). */
export interface SandboxInfo {
    id: string;
    status: string;
    template: string;
    image_id?: string;
    started_by?: string;
    created_unix_ms?: number;
    timeout?: number;
    on_timeout?: string;
    expires_unix_ms?: number | null;
    metadata?: Record<string, string>;
    envs?: Record<string, string>;
    [key: string]: unknown;
}
/** Called with each piece of output, decoded as UTF-8, as the command produces it. */
export type OnOutput = (data: string) => void;
export interface RunOptions {
    cwd?: string;
    envs?: Record<string, string>;
    /** Seconds; kills the command's process group (exit code 124, `timedOut`). */
    timeout?: number;
    stdin?: string | Uint8Array;
    onStdout?: OnOutput;
    onStderr?: OnOutput;
    background?: boolean;
    /** Throw CommandExitError when the exit code is not 0. */
    check?: boolean;
}
export interface WaitOptions {
    onStdout?: OnOutput;
    onStderr?: OnOutput;
    check?: boolean;
}
/** A finished command. */
export declare class CommandResult {
    readonly stdout: string;
    readonly stderr: string;
    readonly exitCode: number;
    /** The signal that ended it (e.g. "KILL"), else null. */
    readonly signal: string | null;
    readonly timedOut: boolean;
    constructor(stdout: string, stderr: string, exitCode: number, 
    /** The signal that ended it (e.g. "KILL"), else null. */
    signal: string | null, timedOut: boolean);
}
/** A background command as `commands.list()` reports it. */
export interface CommandInfo {
    command_id: string;
    cmd: string | string[];
    running: boolean;
    exit_code: number | null;
}
/**
 * A background command (live mode), or in record mode what `commands.run`
 * and `commands.start` return: the command was recorded, not run
 * (`recorded` is true and there is no output or exit status).
 */
export declare class CommandHandle {
    #private;
    readonly cmd: string | string[];
    readonly background: boolean;
    private readonly sandbox;
    /** The server's command id (empty in record mode). */
    readonly id: string;
    /** True in record mode: nothing ran. */
    readonly recorded: boolean;
    /** @internal */
    constructor(cmd: string | string[], background: boolean, sandbox?: Sandbox | null, 
    /** The server's command id (empty in record mode). */
    id?: string);
    /** Wait for the command: its output so far is replayed to the callbacks, then live output. */
    wait(opts?: WaitOptions): Promise<CommandResult>;
    /** Send `signal` (default "KILL") to the command's process group. */
    kill(signal?: string): Promise<void>;
    /** Write `data` to the command's stdin. */
    sendStdin(data: string | Uint8Array): Promise<number>;
    /** Close the command's stdin (end of file). */
    closeStdin(): Promise<void>;
}
export declare class Commands {
    private readonly sandbox;
    constructor(sandbox: Sandbox);
    /** Run `cmd` (a shell line or an argv array). Waits for it unless `background`, which gives a handle. */
    run(cmd: string | string[], opts: RunOptions & {
        background: true;
    }): Promise<CommandHandle>;
    run(cmd: string | string[], opts?: RunOptions & {
        background?: false;
    }): Promise<CommandResult>;
    run(cmd: string | string[], opts?: RunOptions): Promise<CommandResult | CommandHandle>;
    /** Start `cmd` in the background (e.g. a server). */
    start(cmd: string | string[], opts?: Omit<RunOptions, "background" | "onStdout" | "onStderr" | "check">): Promise<CommandHandle>;
    /** The background commands this server started in the sandbox. */
    list(): Promise<CommandInfo[]>;
}
export interface EntryInfo {
    name: string;
    kind: "file" | "dir" | "symlink" | "other";
    size: number;
}
export interface StatInfo {
    path: string;
    kind: "file" | "dir" | "symlink" | "other";
    size: number;
    mode: number;
}
export type ReadFormat = "text" | "bytes" | "stream";
export declare class Files {
    private readonly sandbox;
    constructor(sandbox: Sandbox);
    /**
     * Write `data` to the absolute guest `path` (parents created, replaced
     * atomically). Strings are UTF-8; streams are uploaded as they are read.
     * `mode` is octal permission bits, e.g. 0o755 (default 0o644).
     */
    write(path: string, data: string | Uint8Array | Readable | AsyncIterable<Uint8Array>, opts?: {
        mode?: number;
    }): Promise<{
        path: string;
        size: number;
    }>;
    /** Read the guest file at `path`: text (UTF-8, default), bytes, or a stream of its bytes. */
    read(path: string, opts?: {
        format?: "text";
    }): Promise<string>;
    read(path: string, opts: {
        format: "bytes";
    }): Promise<Uint8Array>;
    read(path: string, opts: {
        format: "stream";
    }): Promise<AsyncIterable<Uint8Array> & Readable>;
    /** The entries of the guest directory `path`. */
    list(path: string): Promise<EntryInfo[]>;
    /** Whether `path` exists in the guest. */
    exists(path: string): Promise<boolean>;
    stat(path: string): Promise<StatInfo>;
    /** Remove `path` (directories recursively). */
    remove(path: string): Promise<void>;
    /** Create the directory `path` with its parents; an existing directory is fine. */
    makeDir(path: string): Promise<void>;
}
/** One sandbox microVM. Create it with `await Sandbox.create({...})`, or attach with `Sandbox.connect(id)`. */
export declare class Sandbox {
    #private;
    readonly commands: Commands;
    readonly files: Files;
    /** @internal The recorded sandbox (record mode), else null. */
    readonly record: any;
    /** @internal */
    readonly client: Client;
    private constructor();
    /** The instance name (what `mvmctl ps` shows); empty in record mode. */
    get id(): string;
    /**
     * Create a sandbox from `template` (default "python-3.13").
     *
     * A base template (python-3.13, python-3.11, node-22, node-20, minimal)
     * takes `env` (strings, mvm.literal, mvm.secret), `secrets`, `include`
     * (globs relative to the script's directory), `resources` and `network`,
     * exactly as a recording does (docs/recording.md). Any other template (a
     * snapshot tag, image id, workload name or compiled directory) carries
     * its own declaration, so those are refused; use `envs` for per-command
     * variables.
     */
    static create(opts?: SandboxOptions): Promise<Sandbox>;
    /** Attach to the existing sandbox `id` (SandboxNotFound when there is none). */
    static connect(id: string): Promise<Sandbox>;
    /** Every sandbox (every mvm instance, the CLI's included). */
    static list(): Promise<SandboxInfo[]>;
    /** The sandbox as the server sees it now. */
    info(): Promise<SandboxInfo>;
    /**
     * Call the workload's function with `args` and return its value; a
     * function that throws in the guest gives FunctionError.
     */
    invoke(args?: Record<string, unknown>, opts?: {
        entrypoint?: string;
    }): Promise<unknown>;
    /** Snapshot the running sandbox; create other sandboxes from the tag. */
    snapshot(tag?: string): Promise<{
        tag: string;
        bytes: number;
    }>;
    pause(): Promise<SandboxInfo>;
    /** Resume a paused sandbox; its TTL restarts. */
    resume(): Promise<SandboxInfo>;
    /** `n` new sandboxes from a snapshot of this one. */
    fork(n: number, opts?: {
        timeout?: number;
    }): Promise<Sandbox[]>;
    /** Restart the TTL from now with `seconds`. */
    setTimeout(seconds: number): Promise<SandboxInfo>;
    /** Stop the sandbox. Killing twice is allowed (and records one kill); an already gone sandbox is fine. */
    kill(): Promise<void>;
    /** `await using sb = await Sandbox.create(...)` kills it at the end of the block. */
    [asyncDispose](): Promise<void>;
    /** @internal */
    alive(): void;
    /** @internal The sandbox, checked to be live and not killed. */
    liveOnly(what: string): Sandbox;
    /** @internal */
    path(rest?: string): string;
    /** @internal Append one recorded operation; refused after kill. */
    recordOp(op: any): CommandHandle;
    /** @internal */
    command(cmd: string | string[], background: boolean, opts: RunOptions): Promise<CommandResult | CommandHandle>;
}
export {};
