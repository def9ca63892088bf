/**
 * Record mode: the recording written for `mvmctl compile --from-recording`.
 * The format (`recording_version` 1) is specified in docs/recording.md; this
 * module is its TypeScript writer, byte-compatible with the Python one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { canonicalJson } from "./canonical.js";
import { SandboxError } from "./errors.js";
import { copyEnvValue, Helper, shared } from "./helper.js";
import { network as networkHelper } from "./helpers.js";
import * as spec from "./spec.js";
export const RECORDING_VERSION = 1;
export const TEMPLATES = ["python-3.13", "python-3.11", "node-22", "node-20", "minimal"];
export const SDK_VERSION = "0.1.0";
class Session {
    outPath;
    sourceRoot;
    sandboxes = [];
    constructor(outPath, sourceRoot) {
        this.outPath = outPath;
        this.sourceRoot = sourceRoot;
    }
    document() {
        return {
            recording_version: RECORDING_VERSION,
            sdk: { language: "typescript", version: SDK_VERSION },
            source_root: this.sourceRoot,
            sandboxes: this.sandboxes,
        };
    }
    write() {
        fs.writeFileSync(this.outPath, canonicalJson(this.document()));
    }
}
const state = shared("recording", () => ({ session: null }));
/** The directory of the script node was started with (process.argv[1]). */
function scriptDir() {
    const script = process.argv[1];
    return script ? path.dirname(path.resolve(script)) : process.cwd();
}
/** The recording session, started (and its exit hook registered) on first use. */
export function session() {
    if (state.session === null) {
        const out = process.env.MVM_SDK_OUT_PATH ?? "";
        if (!out)
            throw new SandboxError("MVM_SDK_MODE=record needs MVM_SDK_OUT_PATH: the file the recording is written to");
        const s = new Session(path.resolve(out), scriptDir());
        // 'exit' handlers must be synchronous; writeFileSync is.
        process.on("exit", () => s.write());
        state.session = s;
    }
    return state.session;
}
/** Check `Sandbox.create`'s options and return the recorded sandbox. */
export function sandboxSpec(opts) {
    for (const key of Object.keys(opts)) {
        if (!["template", "env", "include", "resources", "network"].includes(key)) {
            throw new SandboxError(`Sandbox.create has no option '${key}' (allowed: template, env, include, resources, network)`);
        }
    }
    const template = opts.template ?? "python-3.13";
    if (!TEMPLATES.includes(template))
        throw new SandboxError(`template must be one of ${TEMPLATES.join(", ")}, got ${JSON.stringify(template)}`);
    return {
        template,
        env: lowerEnv(opts.env),
        include: lowerInclude(opts.include),
        resources: lowerResources(opts.resources),
        network: lowerNetwork(opts.network),
        operations: [],
    };
}
function lowerEnv(env) {
    if (env === undefined)
        return {};
    if (typeof env !== "object" || env === null || Array.isArray(env))
        throw new SandboxError("env must be an object of names to strings or mvm.secret(...)");
    const out = {};
    for (const [key, value] of Object.entries(env)) {
        if (!spec.PATTERN_ENV_NAME.test(key))
            throw new SandboxError(`env name ${JSON.stringify(key)} is not a valid variable name`);
        if (typeof value === "string")
            out[key] = { kind: "literal", value };
        else if (value instanceof Helper && (value.helper === "literal" || value.helper === "secret"))
            out[key] = copyEnvValue(value.value);
        else
            throw new SandboxError(`env[${JSON.stringify(key)}] must be a string, mvm.literal(...) or mvm.secret(...)`);
    }
    return out;
}
function lowerInclude(include) {
    if (include === undefined)
        return [];
    if (!Array.isArray(include) || !include.every((g) => typeof g === "string" && g)) {
        throw new SandboxError("include must be an array of non-empty glob strings relative to the script's directory");
    }
    return [...include];
}
function lowerResources(resources) {
    const out = {
        cpu_cores: spec.DEFAULT_RESOURCES_CPU_CORES,
        memory_mb: spec.DEFAULT_RESOURCES_MEMORY_MB,
        rootfs_size_mb: spec.DEFAULT_RESOURCES_ROOTFS_SIZE_MB,
    };
    if (resources instanceof Helper && resources.helper === "resources")
        return { ...resources.value };
    if (resources === undefined)
        return out;
    if (typeof resources !== "object" || resources === null)
        throw new SandboxError("resources must be mvm.resources(...) or an object");
    for (const [key, value] of Object.entries(resources)) {
        if (!(key in out) || typeof value !== "number" || !Number.isSafeInteger(value)) {
            throw new SandboxError(`resources.${key} is not one of cpu_cores, memory_mb, rootfs_size_mb with an integer`);
        }
        out[key] = value;
    }
    return out;
}
function lowerNetwork(network) {
    if (network === undefined)
        return networkHelper().value;
    if (network instanceof Helper && network.helper === "network")
        return network.value;
    throw new SandboxError("network must be mvm.network(...)");
}
export function runOp(cmd, background) {
    if (typeof cmd === "string") {
        if (!cmd.trim())
            throw new SandboxError("the command line is empty");
    }
    else if (!Array.isArray(cmd) || !cmd.length || !cmd.every((x) => typeof x === "string") || !cmd[0]) {
        throw new SandboxError("a command is a shell line or a non-empty array of strings");
    }
    return { op: "run", cmd: typeof cmd === "string" ? cmd : [...cmd], background };
}
export function writeOp(guestPath, data) {
    if (typeof guestPath !== "string" || !guestPath.startsWith("/"))
        throw new SandboxError(`files.write needs an absolute guest path, got ${JSON.stringify(guestPath)}`);
    let raw;
    if (typeof data === "string")
        raw = Buffer.from(data, "utf8");
    else if (data instanceof Uint8Array)
        raw = Buffer.from(data);
    else
        throw new SandboxError("files.write data must be a string or a Uint8Array");
    return { op: "write", path: guestPath, data_b64: raw.toString("base64") };
}
