/**
 * Canonical JSON (RFC 8785, JCS). JCS is defined in terms of ECMAScript's
 * JSON.stringify for strings and numbers, so those are used as they are;
 * what is added is key order (UTF-16 code units, which is what `<` on JS
 * strings compares) and refusing what JCS cannot encode.
 */
/** Serialize `value` as RFC 8785 canonical JSON text (no trailing newline). */
export declare function canonicalJson(value: unknown): string;
