// Set on every Helper so that values made by another loaded copy of this
// package (an ESM import next to a CommonJS require of the same file, as
// tsx does for .ts files without "type": "module") are still recognised.
const BRAND = Symbol.for("mvm-sdk.helper");

/** The result of one helper call: `helper` names it, `value` is its IR. */
export class Helper {
  readonly [BRAND] = true;
  constructor(
    readonly helper: string,
    readonly value: any,
    /** Data that is not IR but that `mvm.app` needs (mvm.secret's var). */
    readonly extra: string | null = null,
  ) {}

  static [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === "object" && x !== null && (x as any)[BRAND] === true;
  }
}

/**
 * State that must be one per process even when this package is loaded
 * twice (see BRAND): recorded declarations and the recording session.
 */
export function shared<T>(name: string, make: () => T): T {
  const key = Symbol.for(`mvm-sdk.${name}`);
  const g = globalThis as any;
  if (!(key in g)) g[key] = make();
  return g[key];
}

/** A copy of an env value's IR, its `hosts` list too: a helper's value may be reused. */
export function copyEnvValue(value: any): any {
  const out = { ...value };
  if (Array.isArray(out.hosts)) out.hosts = [...out.hosts];
  return out;
}
