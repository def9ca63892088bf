/**
 * The errors the SDK throws. Codes are the stable strings the static
 * compiler (`mvmctl compile`) prints, so both routes reject alike.
 */

/** A declaration the SDK cannot lower to valid Workload IR. */
export class DeclarationError extends Error {
  /** Stable finding code, e.g. `E_KWARG_UNKNOWN`. */
  readonly code: string;
  readonly hint: string;
  /** JSON pointer into the IR when IR validation found it, else "". */
  readonly path: string;

  constructor(code: string, message: string, hint = "", path = "") {
    super(message);
    this.name = "DeclarationError";
    this.code = code;
    this.hint = hint;
    this.path = path;
  }

  override toString(): string {
    const where = this.path ? `${this.path}: ` : "";
    return `${where}error[${this.code}]: ${this.message}` + (this.hint ? `\n  hint: ${this.hint}` : "");
  }
}

/** A runtime-SDK call that cannot be carried out (wrong mode, bad argument, killed sandbox). */
export class SandboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SandboxError";
  }
}

/**
 * A failure the API server (`mvmctl serve`) reported, in its one error shape
 * (docs/api.md): `code` is stable, `message` and `hint` are for people.
 */
export class ApiError extends SandboxError {
  /** Stable code from docs/api.md, e.g. `E_SANDBOX_NOT_FOUND`. */
  readonly code: string;
  readonly hint: string;
  /** HTTP status of the answer; 0 when no answer came (connection failures). */
  readonly status: number;

  constructor(code: string, message: string, hint = "", status = 0) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.hint = hint;
    this.status = status;
  }

  override toString(): string {
    return `${this.name}: error[${this.code}]: ${this.message}` + (this.hint ? `\n  hint: ${this.hint}` : "");
  }
}

/** No sandbox by that id (`E_SANDBOX_NOT_FOUND`). */
export class SandboxNotFound extends ApiError {}
/** No snapshot, image or base template by that name (`E_TEMPLATE_NOT_FOUND`). */
export class TemplateNotFound extends ApiError {}
/** No such guest path (`E_FILE_NOT_FOUND`). */
export class FileNotFound extends ApiError {}
/** The sandbox did not become ready in time (`E_TIMEOUT`). */
export class TimeoutError extends ApiError {}
/** The operator's policy or the plan refused the launch (`E_POLICY_REFUSED`). */
export class PolicyRefused extends ApiError {}
/** A secret the sandbox needs is not in the store (`E_SECRETS_MISSING`). */
export class SecretsMissing extends ApiError {}
/** A network destination was refused (`E_EGRESS_DENIED`). */
export class EgressDenied extends ApiError {}
/** The TCP API refused the bearer token (`E_API_UNAUTHORIZED`); check MVM_API_TOKEN. */
export class Unauthorized extends ApiError {}
/** Nothing answers at the API endpoint and it could not be started (`E_SERVER_UNAVAILABLE`). */
export class ServerUnavailable extends ApiError {}

const API_ERRORS: Record<string, new (code: string, message: string, hint?: string, status?: number) => ApiError> = {
  E_SANDBOX_NOT_FOUND: SandboxNotFound,
  E_TEMPLATE_NOT_FOUND: TemplateNotFound,
  E_FILE_NOT_FOUND: FileNotFound,
  E_TIMEOUT: TimeoutError,
  E_POLICY_REFUSED: PolicyRefused,
  E_SECRETS_MISSING: SecretsMissing,
  E_EGRESS_DENIED: EgressDenied,
  E_API_UNAUTHORIZED: Unauthorized,
  E_SERVER_UNAVAILABLE: ServerUnavailable,
};

/** The typed error for an API error object `{code, message, hint}`. */
export function apiError(code: string, message: string, hint = "", status = 0): ApiError {
  const Cls = API_ERRORS[code] ?? ApiError;
  return new Cls(code, message, hint, status);
}

/** A command exited non-zero and `check: true` was asked for. */
export class CommandExitError extends SandboxError {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
  readonly signal: string | null;

  constructor(cmd: string | string[], stdout: string, stderr: string, exitCode: number, signal: string | null = null) {
    const shown = typeof cmd === "string" ? cmd : JSON.stringify(cmd);
    const tail = stderr.trim().split("\n").slice(-5).join("\n");
    super(`command ${shown} exited with ${exitCode}` + (tail ? `; stderr ends:\n${tail}` : ""));
    this.name = "CommandExitError";
    this.stdout = stdout;
    this.stderr = stderr;
    this.exitCode = exitCode;
    this.signal = signal;
  }
}

/** The invoked function raised/threw inside the guest. */
export class FunctionError extends SandboxError {
  readonly kind: string;
  readonly traceback: string;

  constructor(kind: string, message: string, traceback = "") {
    super(message);
    this.name = "FunctionError";
    this.kind = kind;
    this.traceback = traceback;
  }

  override toString(): string {
    return `FunctionError: ${this.kind}: ${this.message}` + (this.traceback ? `\n${this.traceback}` : "");
  }
}
