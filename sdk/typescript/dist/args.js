/**
 * Argument binding shared by every helper. A TypeScript helper takes its
 * documented positional values followed by at most one options object;
 * option names are the snake_case names of the spec or their camelCase
 * aliases (`memory_mb` / `memoryMb`). Mistakes throw the static compiler's
 * codes: E_KWARG_UNKNOWN, E_KWARG_CONFLICT, E_KWARG_TYPE.
 */
import { DeclarationError } from "./errors.js";
import { Helper } from "./helper.js";
import { HELPER_PARAMS, HELPER_POSITIONAL, HELPER_REQUIRED } from "./spec.js";
/** The signature of `helper` in the compiler's helper table (spec.ts). */
export function sig(helper) {
    const names = HELPER_PARAMS[helper];
    return { display: `mvm.${helper}`, positional: names.slice(0, HELPER_POSITIONAL[helper]), names, required: HELPER_REQUIRED[helper] };
}
function editDistance(a, b) {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const cur = [i];
        for (let j = 1; j <= b.length; j++)
            cur.push(Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
        prev = cur;
    }
    return prev[b.length];
}
/** The nearest candidate within a third of `word`'s length (at least 2 edits), for "did you mean". */
export function closest(word, candidates) {
    let best = null;
    let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
    for (const c of candidates) {
        const d = editDistance(word, c);
        if (d < bestD)
            [best, bestD] = [c, d];
    }
    return best;
}
function snake(name) {
    return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}
export function isOptions(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Helper);
}
/** Bind `args` to `sig`; absent arguments are left out of the result. */
export function bind(sig, args) {
    const positional = sig.positional ?? [];
    const out = {};
    let i = 0;
    // null/undefined mean "not given", as in the static compiler: the default applies.
    for (; i < args.length && i < positional.length && !isOptions(args[i]); i++) {
        if (args[i] !== undefined && args[i] !== null)
            out[positional[i]] = args[i];
    }
    if (i < args.length && isOptions(args[i])) {
        const opts = args[i];
        i++;
        const seen = new Map();
        for (const [key, value] of Object.entries(opts)) {
            const name = snake(key);
            if (!sig.names.includes(name)) {
                const guess = closest(name, sig.names);
                throw new DeclarationError("E_KWARG_UNKNOWN", `${sig.display} has no option '${key}'`, `${guess ? `did you mean '${guess}'? ` : ""}allowed options: ${sig.names.join(", ")}`);
            }
            if (name in out) {
                const first = seen.get(name);
                throw new DeclarationError("E_KWARG_CONFLICT", `${sig.display} got '${key}' ${first ? `and '${first}'` : "both by position and as an option"}`, `pass ${name} once`);
            }
            seen.set(name, key);
            if (value !== undefined && value !== null)
                out[name] = value;
        }
    }
    if (i < args.length) {
        throw new DeclarationError("E_KWARG_CONFLICT", `${sig.display} takes ${positional.length ? `${positional.join(", ")} then ` : ""}one options object; got ${args.length} arguments`, `pass the other arguments as options: { ${sig.names.join(", ")} }`);
    }
    for (const name of sig.required ?? []) {
        if (!(name in out)) {
            throw new DeclarationError("E_KWARG_TYPE", `${sig.display} needs '${name}'`, `add ${name}: ...`);
        }
    }
    return out;
}
function describe(value) {
    if (value === null)
        return "null";
    if (value === undefined)
        return "nothing";
    if (value instanceof Helper)
        return `mvm.${value.helper}(...)`;
    if (Array.isArray(value))
        return "an array";
    if (typeof value === "number")
        return Number.isInteger(value) ? "an integer" : "a number";
    return `a ${typeof value}`;
}
export function typeError(where, expected, value) {
    return new DeclarationError("E_KWARG_TYPE", `${where} must be ${expected}, got ${describe(value)}`, `write ${where} as ${expected}`);
}
export function string(where, value) {
    if (typeof value !== "string")
        throw typeError(where, "a string", value);
    return value;
}
export function optionalString(where, value) {
    return value === undefined || value === null ? null : string(where, value);
}
export function integer(where, value) {
    if (typeof value !== "number" || !Number.isSafeInteger(value))
        throw typeError(where, "an integer", value);
    return value;
}
export function boolean(where, value) {
    if (typeof value !== "boolean")
        throw typeError(where, "true or false", value);
    return value;
}
export function stringList(where, value) {
    if (!Array.isArray(value))
        throw typeError(where, "an array of strings", value);
    value.forEach((item, i) => string(`${where}[${i}]`, item));
    return [...value];
}
export function optionalStringList(where, value) {
    return value === undefined || value === null ? null : stringList(where, value);
}
/** `value` must be the result of one of `helpers` (E_KWARG_TYPE otherwise). */
export function expect(where, value, ...helpers) {
    if (value instanceof Helper && helpers.includes(value.helper))
        return value;
    throw typeError(where, helpers.map((h) => `mvm.${h}(...)`).join(" or "), value);
}
export function oneOf(where, value, allowed) {
    if (!allowed.includes(value)) {
        throw new DeclarationError("E_INVALID_VALUE", `${where} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${JSON.stringify(value)}`, `use one of: ${allowed.join(", ")}`);
    }
    return value;
}
