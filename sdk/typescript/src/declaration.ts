/**
 * `mvm.app`, `mvm.workload` and emission of the recorded declaration.
 *
 * `mvm.app({...})(fn)` records the declaration (one per file) and returns
 * `fn` unchanged. The static compiler names the default entrypoint after
 * the exported const (`export const greet = mvm.app(...)(...)`), which a
 * running program cannot see, so the SDK finds it the same way a reader
 * would: it takes the file and line of the `mvm.app(` call from the stack
 * and reads the `const NAME =` that the call belongs to in that file. The
 * lookup happens when the IR is built, never at import.
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import * as a from "./args.js";
import { canonicalJson } from "./canonical.js";
import { DeclarationError } from "./errors.js";
import { copyEnvValue, type Helper, shared } from "./helper.js";
import { hookList, local_path, network as networkHelper, no_deps, node_image, resources as resourcesHelper } from "./helpers.js";
import * as spec from "./spec.js";
import { validate } from "./validate.js";

type Json = any;

interface CallSite {
  file: string;
  line: number;
}

interface Declaration {
  file: string;
  app: { body: Json; name: string | null; entrypoints: Json[] | null; site: CallSite; fn: Function } | null;
  workloadId: string | null;
}

const SDK_DIR = path.dirname(fileURLToPath(import.meta.url));
const declarations = shared("declarations", () => new Map<string, Declaration>());

/** Forget every recorded declaration (for tests and long-lived tools). */
export function reset(): void {
  declarations.clear();
}

const FRAME = /\(?((?:file:\/\/)?\/[^()]*?):(\d+):\d+\)?$/;

/** The first stack frame outside this package: where the user called us. */
function callSite(): CallSite {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 50;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  for (const line of stack.split("\n").slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = m[1].startsWith("file://") ? fileURLToPath(m[1]) : m[1];
    if (file.startsWith(SDK_DIR + path.sep)) continue;
    return { file, line: Number(m[2]) };
  }
  throw new DeclarationError(
    "E_NO_DECLARATION",
    "cannot tell which file declares this app (no file in the call stack)",
    "declare the app in a .ts/.js file run with tsx or node",
  );
}

function declarationFor(file: string): Declaration {
  let found = declarations.get(file);
  if (!found) {
    found = { file, app: null, workloadId: null };
    declarations.set(file, found);
  }
  return found;
}

/** Set the workload id of the declaration in the calling file (default: the app name). */
export function workload(opts: { id: string }): void {
  const b = a.bind(a.sig("workload"), [...arguments]);
  declarationFor(callSite().file).workloadId = a.string("mvm.workload(id)", b.id);
}

export interface AppOptions {
  name?: string;
  source?: Helper;
  image?: Helper;
  resources?: Helper;
  dependencies?: Helper;
  network?: Helper;
  env?: Record<string, string | Helper>;
  entrypoint?: Helper;
  entrypoints?: Helper[];
  before_build?: unknown; beforeBuild?: unknown;
  before_start?: unknown; beforeStart?: unknown;
  after_start?: unknown; afterStart?: unknown;
  before_stop?: unknown; beforeStop?: unknown;
  addons?: Helper[];
  threat_tier?: "untrusted" | "trusted"; threatTier?: "untrusted" | "trusted";
} // prettier-ignore

/** Declare the app that runs the function it is applied to; returns that function unchanged. */
export function app(opts: AppOptions = {}): <F extends Function>(fn: F) => F {
  const site = callSite();
  const b = a.bind(a.sig("app"), [...arguments]);
  if (b.entrypoint !== undefined && b.entrypoints !== undefined) {
    throw new DeclarationError(
      "E_KWARG_CONFLICT",
      "mvm.app got both entrypoint and entrypoints",
      "use entrypoint for one entrypoint or entrypoints: [...] for several",
    );
  }
  const name = a.optionalString("mvm.app(name)", b.name);
  if (b.entrypoints !== undefined && !Array.isArray(b.entrypoints)) throw a.typeError("mvm.app(entrypoints)", "an array of entrypoints", b.entrypoints);
  const given = b.entrypoint !== undefined ? [b.entrypoint] : (b.entrypoints as unknown[] | undefined);
  const declared = given?.map(
    (ep, i) => a.expect(b.entrypoints !== undefined ? `mvm.app(entrypoints)[${i}]` : "mvm.app(entrypoint)", ep, "entrypoint_function", "entrypoint").value,
  );
  if (b.addons !== undefined && !Array.isArray(b.addons)) throw a.typeError("mvm.app(addons)", "an array of mvm.addon(...)", b.addons);
  const tiers: readonly string[] = spec.CHOICES_APP_THREAT_TIER;
  const tier = b.threat_tier === undefined ? spec.DEFAULT_APP_THREAT_TIER : a.string("mvm.app(threat_tier)", b.threat_tier);
  if (!tiers.includes(tier)) {
    throw new DeclarationError(
      "E_INVALID_VALUE",
      `mvm.app(threat_tier) must be ${tiers.map((t) => `"${t}"`).join(" or ")}, got ${JSON.stringify(tier)}`,
      "leave it out (untrusted) unless you wrote every line the app runs",
    );
  }
  const hooks: Record<string, unknown[]> = {};
  for (const phase of spec.PHASES) hooks[phase] = hookList(`mvm.app(${phase})`, b[phase]);
  // An absent argument is the helper called without arguments, as in the
  // static compiler (crates/mvm-decl/tests/sdk_spec.rs checks it does so).
  const body: Json = {
    source: (b.source !== undefined ? a.expect("mvm.app(source)", b.source, "local_path") : local_path()).value,
    image:
      b.image !== undefined ? a.expect("mvm.app(image)", b.image, "python_image", "node_image", "nix_packages", "oci_image").value : node_image().value,
    resources: (b.resources !== undefined ? a.expect("mvm.app(resources)", b.resources, "resources") : resourcesHelper()).value,
    dependencies: (b.dependencies !== undefined ? a.expect("mvm.app(dependencies)", b.dependencies, "python_deps", "node_deps", "no_deps") : no_deps()).value,
    network: (b.network !== undefined ? a.expect("mvm.app(network)", b.network, "network") : networkHelper()).value,
    env: lowerEnv(b.env),
    hooks,
    addons: ((b.addons as unknown[] | undefined) ?? []).map((x, i) => a.expect(`mvm.app(addons)[${i}]`, x, "addon").value),
    mounts: [],
    threat_tier: tier,
  };
  return <F extends Function>(fn: F): F => {
    if (typeof fn !== "function") throw a.typeError("mvm.app({...})(fn)", "a function", fn);
    const decl = declarationFor(site.file);
    if (decl.app !== null) {
      throw new DeclarationError(
        "E_APPS_COUNT",
        `${path.basename(decl.file)} declares a second app; a file declares exactly one`,
        "move the other app to its own file",
      );
    }
    decl.app = { body, name, entrypoints: declared ?? null, site, fn };
    return fn;
  };
}

function lowerEnv(env: unknown): Json {
  if (env === undefined || env === null) return {};
  if (!a.isOptions(env)) throw a.typeError("mvm.app(env)", "an object of names to values", env);
  const out: Json = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === "string") {
      out[key] = { kind: "literal", value };
      continue;
    }
    const h = a.expect(`mvm.app(env)[${JSON.stringify(key)}]`, value, "literal", "secret");
    if (h.helper === "secret" && h.extra !== null && h.extra !== key) {
      throw new DeclarationError(
        "E_SECRET_VAR_MISMATCH",
        `mvm.secret(var: ${JSON.stringify(h.extra)}) is set as env ${JSON.stringify(key)}`,
        `make var equal to the env name ${JSON.stringify(key)}, or leave var out`,
      );
    }
    out[key] = copyEnvValue(h.value);
  }
  return out;
}

/**
 * The default entrypoint module (declarations.md: the file's path relative
 * to the source root, dotted, without extension). The source root is the
 * file's directory joined with localPath's path, which may not contain "..",
 * so it is that directory or one below it: the module is the file's name
 * without extension (`app.ts` → `app`).
 */
export function moduleName(file: string): string {
  const base = path.basename(file);
  return base.slice(0, base.length - path.extname(base).length);
}

const CONST_APP = /(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=;]*)?=\s*[A-Za-z_$][\w$]*\s*\.\s*app\s*\(/g;

/** The const the `mvm.app(` call on `site.line` is assigned to, if the file says. */
export function constNameAt(site: CallSite): string | null {
  let text: string;
  try {
    text = fs.readFileSync(site.file, "utf8");
  } catch {
    return null;
  }
  let best: string | null = null;
  for (const m of text.matchAll(CONST_APP)) {
    const callLine = text.slice(0, m.index! + m[0].length).split("\n").length;
    if (callLine <= site.line) best = m[1];
  }
  return best;
}

function functionName(decl: Declaration): string {
  const app = decl.app!;
  const found = constNameAt(app.site) ?? (app.fn.name || null);
  if (found === null) {
    throw new DeclarationError(
      "E_INVALID_VALUE",
      `cannot tell the name of the function declared in ${path.basename(decl.file)}`,
      "write it as `export const NAME = mvm.app({...})(...)`, or give entrypoint: mvm.entrypointFunction({...})",
    );
  }
  return found;
}

function lowerEntrypoints(declared: Json[] | null, module: string, decl: Declaration): Json[] {
  const eps = declared ?? [{ kind: "function", module, function: functionName(decl), primary: true, name: null }];
  return eps.map((ep) => {
    const primary = ep.primary || eps.length === 1;
    if (ep.kind === "function") {
      return {
        kind: "function",
        name: ep.name ?? ep.function.replace(/_/g, "-"),
        language: "node",
        module: ep.module,
        function: ep.function,
        format: spec.FUNCTION_FORMAT,
        working_dir: spec.WORKING_DIR,
        primary,
      };
    }
    return { kind: "command", name: ep.name ?? spec.DEFAULT_ENTRYPOINT_NAME, command: ep.command, working_dir: spec.WORKING_DIR, primary };
  });
}

function single(): Declaration {
  const apps = [...declarations.values()].filter((d) => d.app !== null);
  if (!apps.length) {
    throw new DeclarationError(
      "E_NO_DECLARATION",
      "no mvm.app declaration was recorded",
      "wrap one function with mvm.app({...})(fn) before calling mvm.emitJson()",
    );
  }
  if (apps.length > 1) {
    throw new DeclarationError(
      "E_APPS_COUNT",
      `${apps.length} files declare an app (${apps.map((d) => d.file).join(", ")}); emit one at a time`,
      "import only the declaration you want to emit",
    );
  }
  return apps[0];
}

function build(): { ir: Json; warnings: ReturnType<typeof validate> } {
  const decl = single();
  const app = decl.app!;
  const module = moduleName(decl.file);
  const entrypoints = lowerEntrypoints(app.entrypoints, module, decl);
  const name = app.name ?? (app.entrypoints === null ? entrypoints[0].function : functionName(decl)).replace(/_/g, "-");
  const ir = {
    schema_version: spec.SCHEMA_VERSION,
    id: decl.workloadId ?? name,
    apps: [{ name, ...app.body, entrypoints }],
    volumes: [],
    extensions: {},
  };
  const findings = validate(ir);
  const error = findings.find((f) => f.severity === "error");
  if (error) throw new DeclarationError(error.code, error.message, error.hint, error.path);
  return { ir, warnings: findings.filter((f) => f.severity === "warning") };
}

/** The recorded declaration as a Workload IR object (validated; every field present). */
export function toIr(): Json {
  return build().ir;
}

/** Print the canonical IR to stdout (no trailing newline); warnings go to stderr. */
export function emitJson(): void {
  const { ir, warnings } = build();
  for (const w of warnings) process.stderr.write(`${w.path}: warning[${w.code}]: ${w.message}\n  hint: ${w.hint}\n`);
  process.stdout.write(canonicalJson(ir));
}
