/**
 * Canonical JSON (RFC 8785, JCS). JCS is defined in terms of ECMAScript's
 * JSON.stringify for strings and numbers, so those are used as they are;
 * what is added is key order (UTF-16 code units, which is what `<` on JS
 * strings compares) and refusing what JCS cannot encode.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
function write(value, out) {
    if (value === null || typeof value === "boolean") {
        out.push(String(value));
    }
    else if (typeof value === "number") {
        if (!Number.isFinite(value))
            throw new TypeError(`canonical JSON cannot represent ${value}`);
        out.push(JSON.stringify(value));
    }
    else if (typeof value === "string") {
        if (LONE_SURROGATE.test(value)) {
            throw new TypeError("string contains a lone surrogate, which canonical JSON cannot encode");
        }
        out.push(JSON.stringify(value));
    }
    else if (Array.isArray(value)) {
        out.push("[");
        value.forEach((item, i) => {
            if (i)
                out.push(",");
            write(item, out);
        });
        out.push("]");
    }
    else if (typeof value === "object") {
        const obj = value;
        const keys = Object.keys(obj).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        out.push("{");
        keys.forEach((key, i) => {
            if (i)
                out.push(",");
            write(key, out);
            out.push(":");
            write(obj[key], out);
        });
        out.push("}");
    }
    else {
        throw new TypeError(`canonical JSON cannot represent ${typeof value} values`);
    }
}
/** Serialize `value` as RFC 8785 canonical JSON text (no trailing newline). */
export function canonicalJson(value) {
    const out = [];
    write(value, out);
    return out.join("");
}
