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
import { connect } from "node:net";
/** Where the guest agent listens; `MVM_BROKER_SOCKET` overrides it (tests). */
export const GUEST_SOCKET = "/run/mvm/broker.sock";
const MAX_FRAME = 16 * 1024 * 1024;
const MARGIN_MS = 10_000;
/** A mediated request was refused or failed; `code` (and `name`) says why. */
export class WebError extends Error {
    code;
    constructor(code, message) {
        super(message);
        this.code = code;
        this.name = code;
    }
}
export class WebResponse {
    status;
    headers;
    body;
    constructor(status, 
    /** In order, as the destination sent them (names lowercase). */
    headers, body) {
        this.status = status;
        this.headers = headers;
        this.body = body;
    }
    get ok() {
        return this.status >= 200 && this.status < 300;
    }
    text() {
        return new TextDecoder().decode(this.body);
    }
    json() {
        return JSON.parse(this.text());
    }
    header(name) {
        const n = name.toLowerCase();
        return this.headers.find(([k]) => k.toLowerCase() === n)?.[1];
    }
}
/**
 * Has the host make an HTTPS request for this guest. Put a secret's env
 * var (its opaque token) in a header, e.g.
 * `{ headers: { authorization: "Bearer " + process.env.OPENAI_API_KEY } }`;
 * the host swaps in the value for a destination the secret is bound to.
 */
export async function webFetch(url, options = {}) {
    const headers = Array.isArray(options.headers)
        ? options.headers.map(([k, v]) => [String(k), String(v)])
        : Object.entries(options.headers ?? {}).map(([k, v]) => [k, String(v)]);
    let body;
    if (options.json !== undefined) {
        if (options.body !== undefined)
            throw new WebError("BadRequest", "pass body or json, not both");
        body = new TextEncoder().encode(JSON.stringify(options.json));
        if (!headers.some(([k]) => k.toLowerCase() === "content-type"))
            headers.push(["content-type", "application/json"]);
    }
    else if (typeof options.body === "string") {
        body = new TextEncoder().encode(options.body);
    }
    else {
        body = options.body ?? new Uint8Array();
    }
    const out = await call({
        call: "web_fetch",
        url,
        method: (options.method ?? "GET").toUpperCase(),
        headers,
        body: Buffer.from(body).toString("base64"),
        timeout_ms: options.timeout === undefined ? null : Math.max(1, Math.floor(options.timeout)),
    }, options.timeout ?? 30_000);
    return new WebResponse(Number(out.status), out.headers.map(([k, v]) => [k, v]), new Uint8Array(Buffer.from(String(out.body), "base64")));
}
/** Searches through the provider the host's operator configured. */
export async function webSearch(query, options = {}) {
    const out = await call({ call: "web_search", query, max_results: options.maxResults ?? 10 }, 30_000);
    return out.results.map((r) => ({ title: r.title, url: r.url, snippet: r.snippet }));
}
function call(msg, timeoutMs) {
    const path = process.env.MVM_BROKER_SOCKET ?? GUEST_SOCKET;
    const payload = Buffer.from(JSON.stringify(msg));
    return new Promise((resolve, reject) => {
        const sock = connect(path);
        let chunks = [];
        let got = 0;
        let connected = false;
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new WebError("Timeout", `no answer from the host within ${timeoutMs + MARGIN_MS} ms`));
        }, timeoutMs + MARGIN_MS);
        const done = (f) => {
            clearTimeout(timer);
            sock.destroy();
            f();
        };
        sock.on("connect", () => {
            connected = true;
            const head = Buffer.alloc(4);
            head.writeUInt32BE(payload.length);
            sock.write(Buffer.concat([head, payload]));
        });
        sock.on("data", (d) => {
            chunks.push(d);
            got += d.length;
            if (got < 4)
                return;
            const all = Buffer.concat(chunks);
            chunks = [all];
            const n = all.readUInt32BE(0);
            if (n > MAX_FRAME)
                return done(() => reject(new WebError("Upstream", `the broker's answer is ${n} bytes, over the limit`)));
            if (all.length < 4 + n)
                return;
            done(() => {
                let out;
                try {
                    out = JSON.parse(all.subarray(4, 4 + n).toString("utf8"));
                }
                catch (e) {
                    return reject(new WebError("Upstream", `a malformed answer from the broker: ${e}`));
                }
                if (out.outcome === "failed") {
                    reject(new WebError(out.code, String(out.message ?? "")));
                }
                else {
                    resolve(out);
                }
            });
        });
        sock.on("error", (e) => done(() => reject(new WebError("Unavailable", connected ? `the broker connection failed: ${e.message}` : `no mvm broker at ${path} (${e.message}): webFetch works inside an mvm microVM`))));
        sock.on("end", () => {
            if (got < 4)
                done(() => reject(new WebError("Unavailable", "the broker closed the connection")));
        });
    });
}
