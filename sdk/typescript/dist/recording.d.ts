/**
 * Record mode: the recording written for `mvmctl compile --from-recording`.
 * The format (`recording_version` 1) is specified in docs/recording.md; this
 * module is its TypeScript writer, byte-compatible with the Python one.
 */
import { Helper } from "./helper.js";
export declare const RECORDING_VERSION = 1;
export declare const TEMPLATES: string[];
export declare const SDK_VERSION = "0.1.0";
type Json = any;
declare class Session {
    readonly outPath: string;
    readonly sourceRoot: string;
    readonly sandboxes: Json[];
    constructor(outPath: string, sourceRoot: string);
    document(): Json;
    write(): void;
}
/** The recording session, started (and its exit hook registered) on first use. */
export declare function session(): Session;
export interface SandboxOptions {
    template?: string;
    env?: Record<string, string | Helper>;
    include?: string[];
    resources?: Helper | {
        cpu_cores?: number;
        memory_mb?: number;
        rootfs_size_mb?: number;
    };
    network?: Helper;
}
/** Check `Sandbox.create`'s options and return the recorded sandbox. */
export declare function sandboxSpec(opts: SandboxOptions): Json;
export declare function runOp(cmd: unknown, background: boolean): Json;
export declare function writeOp(guestPath: unknown, data: unknown): Json;
export {};
