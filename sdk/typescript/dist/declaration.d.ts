/**
 * `mvm.app`, `mvm.workload` and emission of the recorded declaration.
 *
 * `mvm.app({...})(fn)` records the declaration (one per file) and returns
 * `fn` unchanged. The static compiler names the default entrypoint after
 * the exported const (`export const greet = mvm.app(...)(...)`), which a
 * running program cannot see, so the SDK finds it the same way a reader
 * would: it takes the file and line of the `mvm.app(` call from the stack
 * and reads the `const NAME =` that the call belongs to in that file. The
 * lookup happens when the IR is built, never at import.
 */
import { type Helper } from "./helper.js";
type Json = any;
interface CallSite {
    file: string;
    line: number;
}
/** Forget every recorded declaration (for tests and long-lived tools). */
export declare function reset(): void;
/** Set the workload id of the declaration in the calling file (default: the app name). */
export declare function workload(opts: {
    id: string;
}): void;
export interface AppOptions {
    name?: string;
    source?: Helper;
    image?: Helper;
    resources?: Helper;
    dependencies?: Helper;
    network?: Helper;
    env?: Record<string, string | Helper>;
    entrypoint?: Helper;
    entrypoints?: Helper[];
    before_build?: unknown;
    beforeBuild?: unknown;
    before_start?: unknown;
    beforeStart?: unknown;
    after_start?: unknown;
    afterStart?: unknown;
    before_stop?: unknown;
    beforeStop?: unknown;
    addons?: Helper[];
    threat_tier?: "untrusted" | "trusted";
    threatTier?: "untrusted" | "trusted";
}
/** Declare the app that runs the function it is applied to; returns that function unchanged. */
export declare function app(opts?: AppOptions): <F extends Function>(fn: F) => F;
/**
 * The default entrypoint module (declarations.md: the file's path relative
 * to the source root, dotted, without extension). The source root is the
 * file's directory joined with localPath's path, which may not contain "..",
 * so it is that directory or one below it: the module is the file's name
 * without extension (`app.ts` → `app`).
 */
export declare function moduleName(file: string): string;
/** The const the `mvm.app(` call on `site.line` is assigned to, if the file says. */
export declare function constNameAt(site: CallSite): string | null;
/** The recorded declaration as a Workload IR object (validated; every field present). */
export declare function toIr(): Json;
/** Print the canonical IR to stdout (no trailing newline); warnings go to stderr. */
export declare function emitJson(): void;
export {};
