/**
 * Argument binding shared by every helper. A TypeScript helper takes its
 * documented positional values followed by at most one options object;
 * option names are the snake_case names of the spec or their camelCase
 * aliases (`memory_mb` / `memoryMb`). Mistakes throw the static compiler's
 * codes: E_KWARG_UNKNOWN, E_KWARG_CONFLICT, E_KWARG_TYPE.
 */
import { DeclarationError } from "./errors.js";
import { Helper } from "./helper.js";
import { HELPER_PARAMS } from "./spec.js";
export interface Signature {
    /** Shown to users, e.g. `mvm.resources`. */
    display: string;
    /** Names that may also be given positionally, in order. */
    positional?: readonly string[];
    /** Every accepted name (snake_case), positional ones included. */
    names: readonly string[];
    required?: readonly string[];
}
export type HelperName = keyof typeof HELPER_PARAMS;
/** The signature of `helper` in the compiler's helper table (spec.ts). */
export declare function sig(helper: HelperName): Signature;
export type Bound = Record<string, unknown>;
/** The nearest candidate within a third of `word`'s length (at least 2 edits), for "did you mean". */
export declare function closest(word: string, candidates: readonly string[]): string | null;
export declare function isOptions(value: unknown): value is Record<string, unknown>;
/** Bind `args` to `sig`; absent arguments are left out of the result. */
export declare function bind(sig: Signature, args: unknown[]): Bound;
export declare function typeError(where: string, expected: string, value: unknown): DeclarationError;
export declare function string(where: string, value: unknown): string;
export declare function optionalString(where: string, value: unknown): string | null;
export declare function integer(where: string, value: unknown): number;
export declare function boolean(where: string, value: unknown): boolean;
export declare function stringList(where: string, value: unknown): string[];
export declare function optionalStringList(where: string, value: unknown): string[] | null;
/** `value` must be the result of one of `helpers` (E_KWARG_TYPE otherwise). */
export declare function expect(where: string, value: unknown, ...helpers: string[]): Helper;
export declare function oneOf(where: string, value: string, allowed: readonly string[]): string;
