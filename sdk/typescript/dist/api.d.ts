/**
 * The HTTP client of the local API (`mvmctl serve`, docs/api.md). Plain
 * node:http, no dependencies: a unix socket by default, TCP with a bearer
 * token when MVM_API_URL says so. Command output (NDJSON) is read line by
 * line as it arrives and file contents are streamed both ways.
 */
import * as http from "node:http";
export declare const BUILD_HINT: string;
/** Bytes to upload: a whole buffer, a string (UTF-8) or a stream of chunks. */
export type Body = Uint8Array | string | AsyncIterable<Uint8Array | string>;
/** Where mvm keeps its state; the same rule as mvm-runtime's `mvm_home()`. */
export declare function mvmHome(): string;
export interface ClientOptions {
    /** `unix:/path/to/api.sock` or `http://host:port`; default MVM_API_URL, else `$MVM_HOME/api.sock`. */
    url?: string;
    /** Bearer token for TCP; default MVM_API_TOKEN. */
    token?: string;
    /** Start `mvmctl serve` when nothing answers on the default socket (default: only when no url was given). */
    autostart?: boolean;
}
export interface RequestOptions {
    json?: unknown;
    query?: Record<string, string | number | undefined>;
    body?: Body;
}
export declare class Client {
    #private;
    /** The endpoint, as shown in messages. */
    readonly url: string;
    constructor(opts?: ClientOptions);
    /** Make sure a server answers, starting one on the default socket if allowed. Done once per client. */
    ready(): Promise<void>;
    /** One request; resolves with the response once its status is 2xx, else throws the typed ApiError. */
    open(method: string, route: string, opts?: RequestOptions): Promise<http.IncomingMessage>;
    /** A JSON request answered with JSON. */
    call(method: string, route: string, json?: unknown, query?: RequestOptions["query"]): Promise<any>;
}
/** The JSON objects of an NDJSON response, each yielded as soon as its line is complete. */
export declare function ndjson(res: http.IncomingMessage): AsyncGenerator<any>;
export declare function readText(res: http.IncomingMessage): Promise<string>;
/** Path segment escaping for ids in routes. */
export declare function seg(value: string): string;
/** The client sandboxes use, built from the environment (rebuilt when MVM_API_URL/TOKEN/HOME change). */
export declare function defaultClient(): Client;
