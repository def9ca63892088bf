// mvm Node function runner: the same line protocol as python_runner.py.
// Requests arrive one JSON object per line on fd 3; answers go one per line
// to fd 4; stdout/stderr belong to the instance log.
//
// Arguments arrive by name (the IR's `args` object). A function whose only
// parameter is a destructuring pattern (`({ name }) => ...`) receives the
// whole object; otherwise each declared parameter receives the argument of
// its name, as Python keyword arguments do, and unknown names are an error.
//
// TypeScript modules (.ts, .mts) run when this Node strips types (>= 22.6;
// the agent passes --experimental-strip-types); older Node reports
// TypeScriptUnsupported.

import { createReadStream, existsSync, writeSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const REQUESTS_FD = 3;
const ANSWERS_FD = 4;
const EXTENSIONS = [".mjs", ".js", ".cjs", ".mts", ".ts"];
const TYPESCRIPT = new Set([".ts", ".mts"]);

function send(message) {
  const bytes = Buffer.from(JSON.stringify(message) + "\n");
  let written = 0;
  while (written < bytes.length) {
    written += writeSync(ANSWERS_FD, bytes, written);
  }
}

class RunnerError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function failure(kind, message, traceback = null) {
  return { ok: false, error: { kind, message, traceback } };
}

function modulePath(workingDir, module) {
  const base = path.resolve(workingDir, module);
  if (path.extname(module) && existsSync(base)) return base;
  for (const ext of EXTENSIONS) {
    if (existsSync(base + ext)) return base + ext;
  }
  throw new RunnerError("ModuleNotFound", `no module ${module} (${EXTENSIONS.join(", ")}) in ${workingDir}`);
}

// The declared parameters of a function, read from its source text.
function parameterList(fn) {
  const source = Function.prototype.toString.call(fn);
  const arrow = source.match(/^(?:async\s*)?([A-Za-z_$][\w$]*)\s*=>/);
  if (arrow) return [arrow[1]];
  const open = source.indexOf("(");
  if (open < 0) return [];
  let depth = 0;
  let current = "";
  const parts = [];
  for (const ch of source.slice(open + 1)) {
    if ("([{".includes(ch)) depth++;
    if (")]}".includes(ch)) {
      if (depth === 0) break;
      depth--;
    }
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

function callArguments(fn, args) {
  const params = parameterList(fn);
  if (params.length === 1 && params[0].startsWith("{")) return [args];
  const names = params.map((p) => p.replace(/^\.\.\./, "").split(/[=:\s]/)[0]);
  const unknown = Object.keys(args).filter((k) => !names.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(`${fn.name || "function"}() got unexpected argument(s): ${unknown.join(", ")}`);
  }
  return names.map((name) => args[name]);
}

async function handle(request) {
  const workingDir = request.working_dir || "/app";
  try {
    if (existsSync(workingDir)) process.chdir(workingDir);
    const file = modulePath(workingDir, request.module);
    if (TYPESCRIPT.has(path.extname(file)) && !process.features.typescript) {
      throw new RunnerError(
        "TypeScriptUnsupported",
        `${file} is TypeScript, which Node ${process.version} cannot run; use Node >= 22.6 in the image or ship JavaScript`,
      );
    }
    const mod = await import(pathToFileURL(file).href);
    const fn = mod[request.function] ?? mod.default?.[request.function];
    if (typeof fn !== "function") {
      throw new RunnerError("FunctionNotFound", `module ${request.module} exports no function ${request.function}`);
    }
    const value = await fn(...callArguments(fn, request.args ?? {}));
    return encodable(value, request.function);
  } catch (err) {
    if (err instanceof RunnerError) return failure(err.kind, err.message);
    if (err instanceof Error) return failure(err.name || err.constructor?.name || "Error", err.message, err.stack ?? null);
    return failure("Thrown", `threw a non-Error value: ${String(err)}`);
  }
}

// JSON.stringify quietly drops or nulls what JSON cannot hold; refuse
// instead, as the Python runner does.
function encodable(value, name) {
  const bad = notJson(value, "result");
  if (bad) return failure("ResultNotSerializable", `${name} returned ${bad}, which is not JSON`);
  return { ok: true, value: value === undefined ? null : value };
}

function notJson(value, where) {
  switch (typeof value) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : `a non-finite number at ${where}`;
    case "undefined":
      return where === "result" ? null : `undefined at ${where}`;
    case "object": {
      if (value === null) return null;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const bad = notJson(value[i], `${where}[${i}]`);
          if (bad) return bad;
        }
        return null;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        return `a ${value.constructor?.name ?? "non-plain object"} at ${where}`;
      }
      for (const [key, item] of Object.entries(value)) {
        const bad = notJson(item, `${where}.${key}`);
        if (bad) return bad;
      }
      return null;
    }
    default:
      return `a ${typeof value} at ${where}`;
  }
}

send({ ready: true, runtime: `node ${process.version}` });
const lines = createInterface({ input: createReadStream(null, { fd: REQUESTS_FD }) });
for await (const line of lines) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    send({ id: 0, ...failure("InvalidRequest", `not a JSON request: ${err.message}`) });
    continue;
  }
  const answer = await handle(request);
  send({ id: request.id ?? 0, ...answer });
}
