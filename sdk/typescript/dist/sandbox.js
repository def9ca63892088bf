/**
 * The runtime SDK: `Sandbox.create(...)` and its operations, in two modes.
 *
 * - **Live** (default): every call goes to the local API, `mvmctl serve`
 *   (docs/api.md), at MVM_API_URL (`unix:/path` or `http://host:port` with
 *   MVM_API_TOKEN), else `$MVM_HOME/api.sock`, where the server is started
 *   in the background when nothing answers (MVM_MVMCTL names the binary).
 * - **Record** (MVM_SDK_MODE=record): every call is recorded and the
 *   recording is written to MVM_SDK_OUT_PATH when the process exits
 *   (docs/recording.md). Nothing is executed; options the recording format
 *   cannot hold are refused, output callbacks are ignored.
 */
import { TextDecoder } from "node:util";
import { defaultClient, ndjson, readText, seg } from "./api.js";
import { ApiError, CommandExitError, FunctionError, SandboxError, apiError } from "./errors.js";
import { Helper } from "./helper.js";
import { secret as secretHelper } from "./helpers.js";
import * as nodePath from "node:path";
import { TEMPLATES, runOp, sandboxSpec, session, writeOp } from "./recording.js";
/** `Symbol.asyncDispose` where the runtime has it (Node >= 20.4 / 22), else the well-known registry key TS polyfills use. */
const asyncDispose = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");
/** A finished command. */
export class CommandResult {
    stdout;
    stderr;
    exitCode;
    signal;
    timedOut;
    constructor(stdout, stderr, exitCode, 
    /** The signal that ended it (e.g. "KILL"), else null. */
    signal, timedOut) {
        this.stdout = stdout;
        this.stderr = stderr;
        this.exitCode = exitCode;
        this.signal = signal;
        this.timedOut = timedOut;
    }
}
/**
 * A background command (live mode), or in record mode what `commands.run`
 * and `commands.start` return: the command was recorded, not run
 * (`recorded` is true and there is no output or exit status).
 */
export class CommandHandle {
    cmd;
    background;
    sandbox;
    id;
    /** True in record mode: nothing ran. */
    recorded;
    /** @internal */
    constructor(cmd, background, sandbox = null, 
    /** The server's command id (empty in record mode). */
    id = "") {
        this.cmd = cmd;
        this.background = background;
        this.sandbox = sandbox;
        this.id = id;
        this.recorded = sandbox === null;
    }
    #path(what) {
        if (this.sandbox === null)
            throw new SandboxError(`${what}: the command was only recorded (MVM_SDK_MODE=record); nothing runs`);
        return `/v1/sandboxes/${seg(this.sandbox.id)}/commands/${seg(this.id)}`;
    }
    /** Wait for the command: its output so far is replayed to the callbacks, then live output. */
    async wait(opts = {}) {
        const route = this.#path("wait");
        const res = await this.sandbox.client.open("GET", route);
        return collect(res, opts, this.cmd);
    }
    /** Send `signal` (default "KILL") to the command's process group. */
    async kill(signal = "KILL") {
        await this.sandbox.client.call("POST", `${this.#path("kill")}/kill`, { signal });
    }
    /** Write `data` to the command's stdin. */
    async sendStdin(data) {
        const answer = await this.sandbox.client.call("POST", `${this.#path("sendStdin")}/stdin`, { data: b64(data, "stdin data") });
        return Number(answer?.sent ?? 0);
    }
    /** Close the command's stdin (end of file). */
    async closeStdin() {
        await this.sandbox.client.call("POST", `${this.#path("closeStdin")}/stdin`, { eof: true });
    }
}
export class Commands {
    sandbox;
    constructor(sandbox) {
        this.sandbox = sandbox;
    }
    async run(cmd, opts = {}) {
        return this.sandbox.command(cmd, opts.background === true, opts);
    }
    /** Start `cmd` in the background (e.g. a server). */
    async start(cmd, opts = {}) {
        return this.sandbox.command(cmd, true, opts);
    }
    /** The background commands this server started in the sandbox. */
    async list() {
        const sb = this.sandbox.liveOnly("commands.list");
        const answer = await sb.client.call("GET", sb.path("/commands"));
        return answer?.commands ?? [];
    }
}
export class Files {
    sandbox;
    constructor(sandbox) {
        this.sandbox = sandbox;
    }
    /**
     * Write `data` to the absolute guest `path` (parents created, replaced
     * atomically). Strings are UTF-8; streams are uploaded as they are read.
     * `mode` is octal permission bits, e.g. 0o755 (default 0o644).
     */
    async write(path, data, opts = {}) {
        const sb = this.sandbox;
        if (sb.record !== null) {
            if (opts.mode !== undefined)
                throw new SandboxError("files.write mode cannot be recorded (MVM_SDK_MODE=record): a recorded write is only its path and bytes (docs/recording.md)");
            sb.recordOp(writeOp(path, data));
            return { path, size: typeof data === "string" ? Buffer.byteLength(data) : data.byteLength };
        }
        sb.alive();
        checkPath("files.write", path);
        const isStream = typeof data === "object" && data !== null && Symbol.asyncIterator in data;
        if (typeof data !== "string" && !(data instanceof Uint8Array) && !isStream) {
            throw new SandboxError("files.write data must be a string, a Uint8Array, or a Readable / AsyncIterable of Uint8Array");
        }
        let mode;
        if (opts.mode !== undefined) {
            if (!Number.isInteger(opts.mode) || opts.mode < 0 || opts.mode > 0o7777)
                throw new SandboxError(`files.write mode must be permission bits such as 0o644, got ${opts.mode}`);
            mode = opts.mode.toString(8);
        }
        const res = await sb.client.open("PUT", sb.path("/files"), { query: { path, mode }, body: data });
        return JSON.parse(await readText(res));
    }
    async read(path, opts = {}) {
        const sb = this.sandbox.liveOnly("files.read");
        checkPath("files.read", path);
        const format = opts.format ?? "text";
        if (!["text", "bytes", "stream"].includes(format))
            throw new SandboxError(`files.read format must be "text", "bytes" or "stream", got ${JSON.stringify(format)}`);
        const res = await sb.client.open("GET", sb.path("/files"), { query: { path } });
        if (format === "stream")
            return res;
        const parts = [];
        let total = 0;
        try {
            for await (const chunk of res) {
                parts.push(chunk);
                total += chunk.length;
            }
        }
        catch (e) {
            throw new ApiError("E_API_TRUNCATED", `reading ${path} was cut short after ${total} bytes: ${e.message}`, "the sandbox may have stopped; read it again");
        }
        const expected = res.headers["content-length"];
        if (expected !== undefined && /^\d+$/.test(expected) && Number(expected) !== total) {
            throw new ApiError("E_API_TRUNCATED", `reading ${path} was cut short: ${total} of ${expected} bytes`, "the file changed or the sandbox stopped while it was read; read it again");
        }
        const all = Buffer.concat(parts);
        return format === "text" ? all.toString("utf8") : new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
    }
    /** The entries of the guest directory `path`. */
    async list(path) {
        const sb = this.sandbox.liveOnly("files.list");
        checkPath("files.list", path);
        const answer = await sb.client.call("GET", sb.path("/files/list"), undefined, { path });
        return answer?.entries ?? [];
    }
    /** Whether `path` exists in the guest. */
    async exists(path) {
        try {
            await this.stat(path);
            return true;
        }
        catch (e) {
            if (e instanceof ApiError && e.code === "E_FILE_NOT_FOUND")
                return false;
            throw e;
        }
    }
    async stat(path) {
        const sb = this.sandbox.liveOnly("files.stat");
        checkPath("files.stat", path);
        return sb.client.call("GET", sb.path("/files/stat"), undefined, { path });
    }
    /** Remove `path` (directories recursively). */
    async remove(path) {
        const sb = this.sandbox.liveOnly("files.remove");
        checkPath("files.remove", path);
        await sb.client.call("DELETE", sb.path("/files"), undefined, { path });
    }
    /** Create the directory `path` with its parents; an existing directory is fine. */
    async makeDir(path) {
        const sb = this.sandbox.liveOnly("files.makeDir");
        checkPath("files.makeDir", path);
        await sb.client.call("POST", sb.path("/files/mkdir"), { path });
    }
}
/** One sandbox microVM. Create it with `await Sandbox.create({...})`, or attach with `Sandbox.connect(id)`. */
export class Sandbox {
    commands = new Commands(this);
    files = new Files(this);
    /** @internal The recorded sandbox (record mode), else null. */
    record;
    /** @internal */
    client;
    #info;
    #killed = false;
    constructor(record, client, info) {
        this.record = record;
        // null only in record mode, where no request is ever made
        this.client = client;
        this.#info = info ?? { id: "", status: "recorded", template: record?.template ?? "" };
    }
    /** The instance name (what `mvmctl ps` shows); empty in record mode. */
    get id() {
        return String(this.#info.id ?? "");
    }
    /**
     * Create a sandbox from `template` (default "python-3.13").
     *
     * A base template (python-3.13, python-3.11, node-22, node-20, minimal)
     * takes `env` (strings, mvm.literal, mvm.secret), `secrets`, `include`
     * (globs relative to the script's directory), `resources` and `network`,
     * exactly as a recording does (docs/recording.md). Any other template (a
     * snapshot tag, image id, workload name or compiled directory) carries
     * its own declaration, so those are refused; use `envs` for per-command
     * variables.
     */
    static async create(opts = {}) {
        if (typeof opts !== "object" || opts === null)
            throw new SandboxError("Sandbox.create takes an options object");
        const allowed = ["template", "env", "include", "resources", "network", "secrets", "envs", "timeout", "onTimeout", "metadata", "id"];
        for (const key of Object.keys(opts)) {
            if (!allowed.includes(key))
                throw new SandboxError(`Sandbox.create has no option '${key}' (allowed: ${allowed.join(", ")})`);
        }
        const { template = "python-3.13", env, include, resources, network, secrets, envs, timeout = 300, onTimeout = "kill", metadata, id } = opts;
        const declared = Object.entries({ env, include, resources, network, secrets })
            .filter(([, v]) => v !== undefined)
            .map(([k]) => k);
        const merged = mergeSecrets(env, secrets);
        const recordOpts = dropUndefined({ template, env: merged, include, resources, network });
        if (live() === false) {
            if (envs !== undefined)
                throw new SandboxError("envs cannot be recorded (MVM_SDK_MODE=record): use env to put variables into the image");
            // timeout, onTimeout, metadata and id concern the live instance, not the image: ignored.
            const spec = sandboxSpec(recordOpts);
            session().sandboxes.push(spec);
            return new Sandbox(spec, null, null);
        }
        if (typeof template !== "string" || !template) {
            throw new SandboxError(`template must be a non-empty string (a base template, snapshot tag, image id, workload name or compiled directory), got ${JSON.stringify(template)}`);
        }
        const body = { template };
        if (TEMPLATES.includes(template)) {
            const spec = sandboxSpec(recordOpts);
            delete spec.operations;
            body.recording = spec;
            // The same root record mode writes: include globs are relative to
            // it. Sent only when something is included: a server reached over
            // TCP refuses host paths.
            if (spec.include.length)
                body.source_root = scriptDir();
        }
        else if (declared.length) {
            throw new SandboxError(`template ${JSON.stringify(template)} is not a base template (${TEMPLATES.join(", ")}): it carries its own declaration, ` +
                `so ${declared.join(", ")} cannot be given; use envs for per-command variables`);
        }
        body.timeout = positive("timeout", timeout);
        if (onTimeout !== "kill" && onTimeout !== "pause")
            throw new SandboxError(`onTimeout must be "kill" or "pause", got ${JSON.stringify(onTimeout)}`);
        body.on_timeout = onTimeout;
        if (envs !== undefined)
            body.envs = strRecord("envs", envs);
        if (metadata !== undefined)
            body.metadata = strRecord("metadata", metadata);
        if (id !== undefined) {
            if (typeof id !== "string" || !id)
                throw new SandboxError(`id must be a non-empty string, got ${JSON.stringify(id)}`);
            body.id = id;
        }
        const client = defaultClient();
        return new Sandbox(null, client, await client.call("POST", "/v1/sandboxes", body));
    }
    /** Attach to the existing sandbox `id` (SandboxNotFound when there is none). */
    static async connect(id) {
        if (live() === false)
            throw new SandboxError("Sandbox.connect cannot be recorded (MVM_SDK_MODE=record)");
        if (typeof id !== "string" || !id)
            throw new SandboxError(`Sandbox.connect needs a sandbox id, got ${JSON.stringify(id)}`);
        const client = defaultClient();
        return new Sandbox(null, client, await client.call("GET", `/v1/sandboxes/${seg(id)}`));
    }
    /** Every sandbox (every mvm instance, the CLI's included). */
    static async list() {
        if (live() === false)
            throw new SandboxError("Sandbox.list cannot be recorded (MVM_SDK_MODE=record)");
        const answer = await defaultClient().call("GET", "/v1/sandboxes");
        return answer?.sandboxes ?? [];
    }
    /** The sandbox as the server sees it now. */
    async info() {
        this.liveOnly("info");
        return this.#update(await this.client.call("GET", this.path()));
    }
    /**
     * Call the workload's function with `args` and return its value; a
     * function that throws in the guest gives FunctionError.
     */
    async invoke(args = {}, opts = {}) {
        this.liveOnly("invoke");
        const answer = await this.client.call("POST", this.path("/invoke"), { entrypoint: opts.entrypoint ?? null, args });
        if (answer?.function_error) {
            const fe = answer.function_error;
            throw new FunctionError(String(fe.kind ?? "Error"), String(fe.message ?? ""), String(fe.traceback ?? ""));
        }
        return answer?.value;
    }
    /** Snapshot the running sandbox; create other sandboxes from the tag. */
    async snapshot(tag) {
        this.liveOnly("snapshot");
        return this.client.call("POST", this.path("/snapshot"), tag === undefined ? {} : { tag });
    }
    async pause() {
        this.liveOnly("pause");
        return this.#update(await this.client.call("POST", this.path("/pause")));
    }
    /** Resume a paused sandbox; its TTL restarts. */
    async resume() {
        this.liveOnly("resume");
        return this.#update(await this.client.call("POST", this.path("/resume")));
    }
    /** `n` new sandboxes from a snapshot of this one. */
    async fork(n, opts = {}) {
        this.liveOnly("fork");
        if (!Number.isSafeInteger(n) || n < 1)
            throw new SandboxError(`fork needs a count of at least 1, got ${n}`);
        const body = { count: n };
        if (opts.timeout !== undefined)
            body.timeout = positive("timeout", opts.timeout);
        const answer = await this.client.call("POST", this.path("/fork"), body);
        return (answer?.sandboxes ?? []).map((info) => new Sandbox(null, this.client, info));
    }
    /** Restart the TTL from now with `seconds`. */
    async setTimeout(seconds) {
        this.liveOnly("setTimeout");
        return this.#update(await this.client.call("POST", this.path("/timeout"), { timeout: positive("timeout", seconds) }));
    }
    /** Stop the sandbox. Killing twice is allowed (and records one kill); an already gone sandbox is fine. */
    async kill() {
        if (this.#killed)
            return;
        this.#killed = true;
        if (this.record !== null) {
            this.record.operations.push({ op: "kill" });
            return;
        }
        try {
            await this.client.call("DELETE", this.path());
        }
        catch (e) {
            if (!(e instanceof ApiError && e.code === "E_SANDBOX_NOT_FOUND")) {
                this.#killed = false;
                throw e;
            }
        }
    }
    /** `await using sb = await Sandbox.create(...)` kills it at the end of the block. */
    async [asyncDispose]() {
        await this.kill();
    }
    // --- internals -------------------------------------------------------
    #update(info) {
        if (info && typeof info === "object" && info.id)
            this.#info = info;
        return info;
    }
    /** @internal */
    alive() {
        if (this.#killed)
            throw new SandboxError("this sandbox was killed; create a new one with Sandbox.create(...)");
    }
    /** @internal The sandbox, checked to be live and not killed. */
    liveOnly(what) {
        if (this.record !== null) {
            throw new SandboxError(`${what} cannot be recorded (MVM_SDK_MODE=record): a recording holds only commands.run/start, files.write and kill (docs/recording.md)`);
        }
        this.alive();
        return this;
    }
    /** @internal */
    path(rest = "") {
        return `/v1/sandboxes/${seg(this.id)}${rest}`;
    }
    /** @internal Append one recorded operation; refused after kill. */
    recordOp(op) {
        this.alive();
        this.record.operations.push(op);
        return new CommandHandle(op.cmd, op.background);
    }
    /** @internal */
    async command(cmd, background, opts) {
        this.alive();
        if (this.record !== null) {
            const refused = ["cwd", "envs", "timeout", "stdin"].filter((k) => opts[k] !== undefined);
            if (refused.length) {
                throw new SandboxError(`commands.run ${refused.join("/")} cannot be recorded (MVM_SDK_MODE=record): a recorded command is only its cmd and ` +
                    "background flag (docs/recording.md); put variables in Sandbox.create({env}) or `cd`/redirect inside a shell line");
            }
            return this.recordOp(runOp(cmd, background));
        }
        runOp(cmd, background); // the same checks as record mode
        const body = { cmd: typeof cmd === "string" ? cmd : [...cmd], background };
        if (opts.cwd !== undefined)
            body.cwd = checkPath("commands.run cwd", opts.cwd);
        if (opts.envs !== undefined)
            body.envs = strRecord("envs", opts.envs);
        if (opts.timeout !== undefined)
            body.timeout = positive("timeout", opts.timeout);
        if (opts.stdin !== undefined)
            body.stdin = b64(opts.stdin, "stdin");
        if (background) {
            const answer = await this.client.call("POST", this.path("/commands"), body);
            return new CommandHandle(cmd, true, this, String(answer.command_id));
        }
        const res = await this.client.open("POST", this.path("/commands"), { json: body });
        return collect(res, opts, cmd);
    }
}
// --- helpers ---------------------------------------------------------------
/** The directory of the script node was started with; the same rule as recording.ts (source_root). */
function scriptDir() {
    const script = process.argv[1];
    return script ? nodePath.dirname(nodePath.resolve(script)) : process.cwd();
}
/** False in record mode (MVM_SDK_MODE=record); every other value is live. */
function live() {
    return (process.env.MVM_SDK_MODE ?? "") !== "record";
}
/** Read a command's NDJSON events into a result, passing output to the callbacks as it arrives. */
async function collect(res, opts, cmd) {
    const out = [];
    const err = [];
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    try {
        return await collectEvents(res, opts, cmd, out, err, decoders);
    }
    finally {
        // A throwing callback or check leaves the stream unread: let the connection go.
        if (!res.complete)
            res.destroy();
    }
}
async function collectEvents(res, opts, cmd, out, err, decoders) {
    for await (const event of ndjson(res)) {
        const type = event?.type;
        if (type === "stdout" || type === "stderr") {
            // stream: true keeps a UTF-8 sequence split across events whole
            const text = decoders[type].decode(Buffer.from(String(event.data ?? ""), "base64"), { stream: true });
            if (!text)
                continue;
            (type === "stdout" ? out : err).push(text);
            const cb = type === "stdout" ? opts.onStdout : opts.onStderr;
            if (cb)
                cb(text);
        }
        else if (type === "exit") {
            const tailOut = decoders.stdout.decode();
            const tailErr = decoders.stderr.decode();
            if (tailOut)
                out.push(tailOut);
            if (tailErr)
                err.push(tailErr);
            const result = new CommandResult(out.join(""), err.join(""), Number(event.exit_code ?? -1), event.signal ?? null, Boolean(event.timed_out));
            if (opts.check && result.exitCode !== 0)
                throw new CommandExitError(cmd, result.stdout, result.stderr, result.exitCode, result.signal);
            return result;
        }
        else if (type === "error") {
            const e = event.error ?? {};
            throw apiError(String(e.code ?? "E_RUNTIME"), String(e.message ?? "the command failed"), String(e.hint ?? ""), res.statusCode ?? 0);
        }
        // unknown event types are skipped: later servers may add some
    }
    throw new ApiError("E_RUNTIME", `the output of ${JSON.stringify(cmd)} ended without an exit event (the server or the guest went away)`, "see $MVM_HOME/api.log and `mvmctl ps`");
}
function mergeSecrets(env, secrets) {
    if (secrets === undefined)
        return env;
    if (typeof secrets !== "object" || secrets === null || Array.isArray(secrets)) {
        throw new SandboxError("secrets must be an object of variable names to secret names or mvm.secret(...)");
    }
    if (env !== undefined && (typeof env !== "object" || env === null || Array.isArray(env)))
        return env; // sandboxSpec reports it
    const merged = { ...(env ?? {}) };
    for (const [name, ref] of Object.entries(secrets)) {
        if (name in merged)
            throw new SandboxError(`${JSON.stringify(name)} is given both in env and in secrets; keep one`);
        if (typeof ref === "string")
            merged[name] = secretHelper(ref);
        else if (ref instanceof Helper && ref.helper === "secret")
            merged[name] = ref;
        else
            throw new SandboxError(`secrets[${JSON.stringify(name)}] must be a secret name or mvm.secret(...)`);
    }
    return merged;
}
function dropUndefined(o) {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
function positive(name, value) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
        throw new SandboxError(`${name} must be a positive number of seconds, got ${JSON.stringify(value)}`);
    return value;
}
function strRecord(name, value) {
    if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === "string")) {
        throw new SandboxError(`${name} must be an object of strings`);
    }
    return { ...value };
}
function checkPath(what, p) {
    if (typeof p !== "string" || !p.startsWith("/"))
        throw new SandboxError(`${what} needs an absolute guest path, got ${JSON.stringify(p)}`);
    return p;
}
function b64(data, what) {
    if (typeof data === "string")
        return Buffer.from(data, "utf8").toString("base64");
    if (data instanceof Uint8Array)
        return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
    throw new SandboxError(`${what} must be a string or a Uint8Array`);
}
