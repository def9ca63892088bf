// Set on every Helper so that values made by another loaded copy of this
// package (an ESM import next to a CommonJS require of the same file, as
// tsx does for .ts files without "type": "module") are still recognised.
const BRAND = Symbol.for("mvm-sdk.helper");
/** The result of one helper call: `helper` names it, `value` is its IR. */
export class Helper {
    helper;
    value;
    extra;
    [BRAND] = true;
    constructor(helper, value, 
    /** Data that is not IR but that `mvm.app` needs (mvm.secret's var). */
    extra = null) {
        this.helper = helper;
        this.value = value;
        this.extra = extra;
    }
    static [Symbol.hasInstance](x) {
        return typeof x === "object" && x !== null && x[BRAND] === true;
    }
}
/**
 * State that must be one per process even when this package is loaded
 * twice (see BRAND): recorded declarations and the recording session.
 */
export function shared(name, make) {
    const key = Symbol.for(`mvm-sdk.${name}`);
    const g = globalThis;
    if (!(key in g))
        g[key] = make();
    return g[key];
}
/** A copy of an env value's IR, its `hosts` list too: a helper's value may be reused. */
export function copyEnvValue(value) {
    const out = { ...value };
    if (Array.isArray(out.hosts))
        out.hosts = [...out.hosts];
    return out;
}
