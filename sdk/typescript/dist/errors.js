/**
 * The errors the SDK throws. Codes are the stable strings the static
 * compiler (`mvmctl compile`) prints, so both routes reject alike.
 */
/** A declaration the SDK cannot lower to valid Workload IR. */
export class DeclarationError extends Error {
    /** Stable finding code, e.g. `E_KWARG_UNKNOWN`. */
    code;
    hint;
    /** JSON pointer into the IR when IR validation found it, else "". */
    path;
    constructor(code, message, hint = "", path = "") {
        super(message);
        this.name = "DeclarationError";
        this.code = code;
        this.hint = hint;
        this.path = path;
    }
    toString() {
        const where = this.path ? `${this.path}: ` : "";
        return `${where}error[${this.code}]: ${this.message}` + (this.hint ? `\n  hint: ${this.hint}` : "");
    }
}
/** A runtime-SDK call that cannot be carried out (wrong mode, bad argument, killed sandbox). */
export class SandboxError extends Error {
    constructor(message) {
        super(message);
        this.name = "SandboxError";
    }
}
