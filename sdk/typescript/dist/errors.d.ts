/**
 * The errors the SDK throws. Codes are the stable strings the static
 * compiler (`mvmctl compile`) prints, so both routes reject alike.
 */
/** A declaration the SDK cannot lower to valid Workload IR. */
export declare class DeclarationError extends Error {
    /** Stable finding code, e.g. `E_KWARG_UNKNOWN`. */
    readonly code: string;
    readonly hint: string;
    /** JSON pointer into the IR when IR validation found it, else "". */
    readonly path: string;
    constructor(code: string, message: string, hint?: string, path?: string);
    toString(): string;
}
/** A runtime-SDK call that cannot be carried out (wrong mode, bad argument, killed sandbox). */
export declare class SandboxError extends Error {
    constructor(message: string);
}
