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
/**
 * A failure the API server (`mvmctl serve`) reported, in its one error shape
 * (docs/api.md): `code` is stable, `message` and `hint` are for people.
 */
export declare class ApiError extends SandboxError {
    /** Stable code from docs/api.md, e.g. `E_SANDBOX_NOT_FOUND`. */
    readonly code: string;
    readonly hint: string;
    /** HTTP status of the answer; 0 when no answer came (connection failures). */
    readonly status: number;
    constructor(code: string, message: string, hint?: string, status?: number);
    toString(): string;
}
/** No sandbox by that id (`E_SANDBOX_NOT_FOUND`). */
export declare class SandboxNotFound extends ApiError {
}
/** No snapshot, image or base template by that name (`E_TEMPLATE_NOT_FOUND`). */
export declare class TemplateNotFound extends ApiError {
}
/** No such guest path (`E_FILE_NOT_FOUND`). */
export declare class FileNotFound extends ApiError {
}
/** The sandbox did not become ready in time (`E_TIMEOUT`). */
export declare class TimeoutError extends ApiError {
}
/** The operator's policy or the plan refused the launch (`E_POLICY_REFUSED`). */
export declare class PolicyRefused extends ApiError {
}
/** A secret the sandbox needs is not in the store (`E_SECRETS_MISSING`). */
export declare class SecretsMissing extends ApiError {
}
/** A network destination was refused (`E_EGRESS_DENIED`). */
export declare class EgressDenied extends ApiError {
}
/** The TCP API refused the bearer token (`E_API_UNAUTHORIZED`); check MVM_API_TOKEN. */
export declare class Unauthorized extends ApiError {
}
/** Nothing answers at the API endpoint and it could not be started (`E_SERVER_UNAVAILABLE`). */
export declare class ServerUnavailable extends ApiError {
}
/** The typed error for an API error object `{code, message, hint}`. */
export declare function apiError(code: string, message: string, hint?: string, status?: number): ApiError;
/** A command exited non-zero and `check: true` was asked for. */
export declare class CommandExitError extends SandboxError {
    readonly stdout: string;
    readonly stderr: string;
    readonly exitCode: number;
    readonly signal: string | null;
    constructor(cmd: string | string[], stdout: string, stderr: string, exitCode: number, signal?: string | null);
}
/** The invoked function raised/threw inside the guest. */
export declare class FunctionError extends SandboxError {
    readonly kind: string;
    readonly traceback: string;
    constructor(kind: string, message: string, traceback?: string);
    toString(): string;
}
