declare const BRAND: unique symbol;
/** The result of one helper call: `helper` names it, `value` is its IR. */
export declare class Helper {
    readonly helper: string;
    readonly value: any;
    /** Data that is not IR but that `mvm.app` needs (mvm.secret's var). */
    readonly extra: string | null;
    readonly [BRAND] = true;
    constructor(helper: string, value: any, 
    /** Data that is not IR but that `mvm.app` needs (mvm.secret's var). */
    extra?: string | null);
    static [Symbol.hasInstance](x: unknown): boolean;
}
/**
 * State that must be one per process even when this package is loaded
 * twice (see BRAND): recorded declarations and the recording session.
 */
export declare function shared<T>(name: string, make: () => T): T;
/** A copy of an env value's IR, its `hosts` list too: a helper's value may be reused. */
export declare function copyEnvValue(value: any): any;
export {};
