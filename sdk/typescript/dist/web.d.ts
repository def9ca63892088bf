/**
 * Requests the host makes for the guest: `webFetch` and `webSearch`.
 *
 * Inside an mvm microVM these go over the agent's broker channel to the
 * host, which checks the destination against the app's egress grants,
 * applies the app's secrets (the guest only ever holds their opaque
 * tokens), performs the request with verified TLS and hands back the answer
 * with every secret value replaced by its token. Outside a microVM there is
 * no broker: the calls reject with `Unavailable`. See docs/secrets.md.
 */
/** Where the guest agent listens; `MVM_BROKER_SOCKET` overrides it (tests). */
export declare const GUEST_SOCKET = "/run/mvm/broker.sock";
/** The codes the host answers with; each is also the error's `name`. */
export type WebErrorCode = "EgressDenied" | "SecretNotAllowed" | "Timeout" | "TooLarge" | "BadRequest" | "Upstream" | "Busy" | "Unavailable";
/** A mediated request was refused or failed; `code` (and `name`) says why. */
export declare class WebError extends Error {
    readonly code: WebErrorCode;
    constructor(code: WebErrorCode, message: string);
}
export interface WebFetchOptions {
    method?: string;
    headers?: Record<string, string> | Array<[string, string]>;
    body?: string | Uint8Array;
    /** A JSON body (sets content-type unless given). */
    json?: unknown;
    /** Milliseconds. */
    timeout?: number;
}
export declare class WebResponse {
    readonly status: number;
    /** In order, as the destination sent them (names lowercase). */
    readonly headers: Array<[string, string]>;
    readonly body: Uint8Array;
    constructor(status: number, 
    /** In order, as the destination sent them (names lowercase). */
    headers: Array<[string, string]>, body: Uint8Array);
    get ok(): boolean;
    text(): string;
    json(): unknown;
    header(name: string): string | undefined;
}
export interface SearchHit {
    title: string;
    url: string;
    snippet: string;
}
/**
 * Has the host make an HTTPS request for this guest. Put a secret's env
 * var (its opaque token) in a header, e.g.
 * `{ headers: { authorization: "Bearer " + process.env.OPENAI_API_KEY } }`;
 * the host swaps in the value for a destination the secret is bound to.
 */
export declare function webFetch(url: string, options?: WebFetchOptions): Promise<WebResponse>;
/** Searches through the provider the host's operator configured. */
export declare function webSearch(query: string, options?: {
    maxResults?: number;
}): Promise<SearchHit[]>;
