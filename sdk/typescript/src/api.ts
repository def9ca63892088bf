/**
 * The HTTP client of the local API (`mvmctl serve`, docs/api.md). Plain
 * node:http, no dependencies: a unix socket by default, TCP with a bearer
 * token when MVM_API_URL says so. Command output (NDJSON) is read line by
 * line as it arrives and file contents are streamed both ways.
 */

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

import { ApiError, ServerUnavailable, apiError } from "./errors.js";

export const BUILD_HINT =
  "build it with `cargo build --release -p mvmctl` and put target/release on PATH, or set MVM_MVMCTL; " +
  "`mvmctl doctor` checks QEMU and the kernel";
const RECORD_HINT = "; or run the script with MVM_SDK_MODE=record to only record it";
/** How long an autostarted server has to answer /v1/health. */
const START_TIMEOUT_MS = 10_000;

/** Bytes to upload: a whole buffer, a string (UTF-8) or a stream of chunks. */
export type Body = Uint8Array | string | AsyncIterable<Uint8Array | string>;

/** Where mvm keeps its state; the same rule as mvm-runtime's `mvm_home()`. */
export function mvmHome(): string {
  const env = process.env;
  if (env.MVM_HOME) return env.MVM_HOME;
  if (env.XDG_DATA_HOME) return path.join(env.XDG_DATA_HOME, "mvm");
  return path.join(env.HOME || "/", ".local/share/mvm");
}

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

export class Client {
  /** The endpoint, as shown in messages. */
  readonly url: string;
  readonly #socketPath: string | undefined;
  readonly #host: string | undefined;
  readonly #port: number | undefined;
  readonly #token: string | undefined;
  readonly #autostart: boolean;
  #ready: Promise<void> | null = null;

  constructor(opts: ClientOptions = {}) {
    const explicit = opts.url ?? process.env.MVM_API_URL ?? "";
    this.#token = opts.token ?? (process.env.MVM_API_TOKEN || undefined);
    this.#autostart = opts.autostart ?? !explicit;
    if (!explicit) {
      this.#socketPath = path.join(mvmHome(), "api.sock");
      this.url = `unix:${this.#socketPath}`;
    } else if (explicit.startsWith("unix:")) {
      this.#socketPath = explicit.slice("unix:".length);
      if (!this.#socketPath) throw new ServerUnavailable("E_SERVER_UNAVAILABLE", `MVM_API_URL ${JSON.stringify(explicit)} names no socket path`, "write it as unix:/path/to/api.sock");
      this.url = explicit;
    } else {
      let u: URL;
      try {
        u = new URL(explicit);
      } catch {
        throw new ServerUnavailable("E_SERVER_UNAVAILABLE", `MVM_API_URL ${JSON.stringify(explicit)} is not a URL`, "write it as unix:/path/to/api.sock or http://host:port");
      }
      if (u.protocol !== "http:") {
        throw new ServerUnavailable("E_SERVER_UNAVAILABLE", `MVM_API_URL ${JSON.stringify(explicit)}: only unix: and http: are supported`, "write it as unix:/path/to/api.sock or http://host:port");
      }
      this.#host = u.hostname.replace(/^\[|\]$/g, "");
      this.#port = Number(u.port || 80);
      this.url = `http://${u.host}`;
    }
  }

  /** Make sure a server answers, starting one on the default socket if allowed. Done once per client. */
  ready(): Promise<void> {
    if (this.#ready === null) {
      this.#ready = this.#ensureServer();
      // A failed start may be retried later (e.g. after the user builds mvmctl).
      this.#ready.catch(() => (this.#ready = null));
    }
    return this.#ready;
  }

  async #healthy(): Promise<boolean> {
    try {
      const res = await this.#raw("GET", "/v1/health", {});
      res.resume();
      return (res.statusCode ?? 0) < 300;
    } catch (e) {
      if (e instanceof ApiError && e.status === 0) return false;
      throw e;
    }
  }

  async #ensureServer(): Promise<void> {
    if (!this.#autostart || (await this.#healthy())) return;
    const home = mvmHome();
    const binary = process.env.MVM_MVMCTL || "mvmctl";
    const logPath = path.join(home, "api.log");
    // Checked before anything is created, so a missing binary leaves no trace in MVM_HOME.
    if (!findExecutable(binary)) throw this.#missing(binary, "was not found or is not executable");
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    const log = fs.openSync(logPath, "a");
    let exited: string | null = null;
    try {
      const child = spawn(binary, ["serve"], { detached: true, stdio: ["ignore", "ignore", log] });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", (err: NodeJS.ErrnoException) => {
          const missing = err.code === "ENOENT" || err.code === "EACCES";
          reject(this.#missing(binary, missing ? "was not found or is not executable" : `failed (${err.message})`));
        });
      });
      child.once("exit", (code, signal) => (exited = signal ? `was killed by ${signal}` : `exited with ${code}`));
      child.unref();
    } finally {
      fs.closeSync(log);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (await this.#healthy()) return;
      if (exited !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const why = exited !== null ? `\`${binary} serve\` ${exited}` : `\`${binary} serve\` did not answer within ${START_TIMEOUT_MS / 1000} s`;
    const tail = logTail(logPath);
    throw new ServerUnavailable(
      "E_SERVER_UNAVAILABLE",
      `nothing answers on ${this.#socketPath}: ${why}` + (tail ? `; ${logPath} ends:\n${tail}` : ` (see ${logPath})`),
      BUILD_HINT + RECORD_HINT,
    );
  }

  #missing(binary: string, what: string): ServerUnavailable {
    return new ServerUnavailable(
      "E_SERVER_UNAVAILABLE",
      `nothing answers on ${this.#socketPath} and the API server could not be started: \`${binary}\` ${what}`,
      BUILD_HINT + RECORD_HINT,
    );
  }

  /** One request; resolves with the response once its status is 2xx, else throws the typed ApiError. */
  async open(method: string, route: string, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
    await this.ready();
    const res = await this.#raw(method, route, opts);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    throw await errorFrom(res, method, route);
  }

  /** A JSON request answered with JSON. */
  async call(method: string, route: string, json?: unknown, query?: RequestOptions["query"]): Promise<any> {
    const res = await this.open(method, route, { json, query });
    const text = await readText(res);
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      throw new ApiError("E_RUNTIME", `${method} ${route} on ${this.url} answered with something that is not JSON: ${text.slice(0, 200)}`, "is MVM_API_URL pointing at mvmctl serve?", res.statusCode ?? 0);
    }
  }

  #raw(method: string, route: string, opts: RequestOptions): Promise<http.IncomingMessage> {
    let target = route;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) target += `?${s}`;
    }
    const headers: Record<string, string> = { Accept: "application/json, application/x-ndjson, application/octet-stream" };
    if (this.#token) headers.Authorization = `Bearer ${this.#token}`;
    let payload: Uint8Array | undefined;
    let stream: AsyncIterable<Uint8Array | string> | undefined;
    if (opts.json !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.json), "utf8");
      headers["Content-Type"] = "application/json";
    } else if (opts.body !== undefined) {
      headers["Content-Type"] = "application/octet-stream";
      if (typeof opts.body === "string") payload = Buffer.from(opts.body, "utf8");
      else if (opts.body instanceof Uint8Array) payload = opts.body;
      else stream = opts.body;
    }
    if (payload !== undefined) headers["Content-Length"] = String(payload.byteLength);
    const where = this.#socketPath !== undefined ? { socketPath: this.#socketPath } : { host: this.#host, port: this.#port };
    return new Promise((resolve, reject) => {
      const req = http.request({ ...where, method, path: target, headers });
      req.on("response", resolve);
      req.on("error", (err: NodeJS.ErrnoException) => reject(this.#connectError(err, method, route)));
      if (stream === undefined) {
        req.end(payload);
        return;
      }
      // Stream the upload with backpressure; an early answer (e.g. 404) ends it.
      (async () => {
        try {
          for await (const chunk of stream) {
            if (req.destroyed) return;
            // 'close' too: a request destroyed mid-upload never drains
            if (!req.write(chunk)) await drainOrClose(req);
          }
          req.end();
        } catch (err) {
          req.destroy(err as Error);
          reject(err);
        }
      })();
    });
  }

  #connectError(err: NodeJS.ErrnoException, method: string, route: string): Error {
    if (err instanceof ApiError) return err;
    const unreachable = ["ENOENT", "ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENOTFOUND", "ETIMEDOUT", "EPIPE"];
    if (err.code && unreachable.includes(err.code)) {
      const hint = this.#autostart
        ? BUILD_HINT + RECORD_HINT
        : `start it with \`mvmctl serve${this.#socketPath === undefined ? " --listen HOST:PORT" : ""}\` or fix MVM_API_URL`;
      return new ServerUnavailable("E_SERVER_UNAVAILABLE", `${method} ${route}: nothing answers on ${this.url} (${err.code})`, hint);
    }
    return err;
  }
}

/** Whether `name` (a path, or a command looked up on PATH) is an executable file. */
function findExecutable(name: string): boolean {
  const candidates = name.includes("/") ? [name] : (process.env.PATH ?? "").split(path.delimiter).filter(Boolean).map((d) => path.join(d, name));
  return candidates.some((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

function drainOrClose(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off("drain", done);
      req.off("close", done);
      resolve();
    };
    req.on("drain", done);
    req.on("close", done);
  });
}

/** The JSON objects of an NDJSON response, each yielded as soon as its line is complete. */
export async function* ndjson(res: http.IncomingMessage): AsyncGenerator<any> {
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of res) {
    pending += decoder.decode(chunk as Buffer, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) yield parseLine(line);
    }
  }
  pending += decoder.decode();
  if (pending.trim()) yield parseLine(pending.trim());
}

function parseLine(line: string): any {
  try {
    return JSON.parse(line);
  } catch {
    throw new ApiError("E_RUNTIME", `the server sent a line that is not JSON: ${line.slice(0, 200)}`, "is MVM_API_URL pointing at mvmctl serve?");
  }
}

export async function readText(res: http.IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of res) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

async function errorFrom(res: http.IncomingMessage, method: string, route: string): Promise<ApiError> {
  const status = res.statusCode ?? 0;
  const text = await readText(res);
  try {
    const e = JSON.parse(text).error;
    if (e && typeof e.code === "string") return apiError(e.code, String(e.message ?? ""), String(e.hint ?? ""), status);
  } catch {
    // not the API's error shape; reported below
  }
  return apiError(status === 401 ? "E_API_UNAUTHORIZED" : "E_RUNTIME", `${method} ${route} failed with HTTP ${status}: ${text.slice(0, 300)}`, "is MVM_API_URL pointing at mvmctl serve?", status);
}

function logTail(file: string, n = 800): string {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text.slice(-n).trim();
  } catch {
    return "";
  }
}

/** Path segment escaping for ids in routes. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

let shared: { key: string; client: Client } | null = null;

/** The client sandboxes use, built from the environment (rebuilt when MVM_API_URL/TOKEN/HOME change). */
export function defaultClient(): Client {
  const e = process.env;
  const key = JSON.stringify([e.MVM_API_URL, e.MVM_API_TOKEN, mvmHome(), e.MVM_MVMCTL]);
  if (shared === null || shared.key !== key) shared = { key, client: new Client() };
  return shared.client;
}
