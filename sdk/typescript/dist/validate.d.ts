/**
 * IR validation: the same checks, codes, JSON pointers and order as
 * `mvm_ir::validate` (crates/mvm-ir/src/validate.rs) and the Python SDK's
 * mvm/validate.py, so the first error thrown is the one the static compiler
 * reports first. All checks live in this one module. Not repeated here: the
 * glob grammar check (only empty and escaping globs are caught) and
 * W_HOOK_UNPINNED_FETCH, which `mvmctl compile` reports in its review.
 */
export interface Finding {
    code: string;
    severity: "error" | "warning";
    /** JSON pointer into the IR. */
    path: string;
    message: string;
    hint: string;
}
type Json = any;
/** Why a bundle-relative path leaves the declaration's directory, if it does. */
export declare function sourceEscape(p: string): string | null;
/** ["wildcard" | "invalid", why] for an egress or resolver host, if wrong. */
export declare function hostProblem(host: string): [string, string] | null;
/** Code point order, which is Rust's byte order on UTF-8 strings. */
export declare function cmpCodePoints(x: string, y: string): number;
/** Every finding for workload `ir`, sorted by JSON pointer then code (as mvm_ir does). */
export declare function validate(ir: Json): Finding[];
/** Why `name` cannot be the header a secret is set into, if it cannot. */
export declare function headerProblem(name: string): string | null;
export {};
