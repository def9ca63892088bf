/**
 * IR validation: the same checks, codes, JSON pointers and order as
 * `mvm_ir::validate` (crates/mvm-ir/src/validate.rs) and the Python SDK's
 * mvm/validate.py, so the first error thrown is the one the static compiler
 * reports first. All checks live in this one module. Not repeated here: the
 * glob grammar check (only empty and escaping globs are caught) and
 * W_HOOK_UNPINNED_FETCH, which `mvmctl compile` reports in its review.
 */

import * as spec from "./spec.js";

// The code order, ranges, phases and name patterns are the compiler's own (spec.ts).
// Findings sort by (path, registry order of the code).
const CODE_ORDER: readonly string[] = spec.CODES;

export interface Finding {
  code: string;
  severity: "error" | "warning";
  /** JSON pointer into the IR. */
  path: string;
  message: string;
  hint: string;
}

type Json = any;

const isId = (s: string) => spec.PATTERN_ID.test(s);
const isIdentifier = (s: string, dollar: boolean) => (dollar ? spec.PATTERN_JS_IDENTIFIER : spec.PATTERN_IDENTIFIER).test(s);
const looksLikeCredential = (key: string) => spec.CREDENTIAL_SUFFIXES.some((s) => key.toUpperCase().endsWith(s));
const seg = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");
const utf8Len = (s: string) => Buffer.byteLength(s, "utf8");

/** Why a bundle-relative path leaves the declaration's directory, if it does. */
export function sourceEscape(p: string): string | null {
  if (p.startsWith("/") || p.startsWith("\\") || /^[A-Za-z]:/.test(p)) return "is absolute";
  if (p.startsWith("~")) return 'starts with "~", which a shell expands to a home directory';
  if (p.split(/[/\\]/).includes("..")) return 'has a ".." component';
  return null;
}

function guestPathProblem(p: string): string | null {
  if (!p.startsWith("/")) return "is not absolute";
  if (p.split("/").includes("..")) return 'has a ".." component';
  if (p.includes("\0")) return "contains a NUL character";
  return null;
}

// Written out rather than node:net's isIP: loading node:net costs more
// than the rest of this package together.
function isIPv4(s: string): boolean {
  const parts = s.split(".");
  // Decimal octets without leading zeros, as Rust's Ipv4Addr parser accepts.
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  // The WHATWG URL parser reads IPv6 literals in brackets (no zone ids).
  return s.includes(":") && URL.canParse(`http://[${s}]/`);
}

/** The bare address if `host` is an IP literal (IPv6 optionally in brackets). */
function ipLiteral(host: string): string | null {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return isIPv4(bare) || isIPv6(bare) ? bare : null;
}

function isUnspecified(ip: string): boolean {
  if (isIPv4(ip)) return ip === "0.0.0.0";
  // A valid IPv6 literal of only zeros and colons is ::.
  return /^[0:]+$/.test(ip);
}

/** ["wildcard" | "invalid", why] for an egress or resolver host, if wrong. */
export function hostProblem(host: string): [string, string] | null {
  if (host.includes("*")) return ["wildcard", 'contains "*"'];
  const slash = host.indexOf("/");
  if (slash >= 0) {
    return ipLiteral(host.slice(0, slash)) !== null
      ? ["wildcard", "is an address range (CIDR), not one host"]
      : ["invalid", 'contains "/"; give a bare host name, not a URL'];
  }
  const ip = ipLiteral(host);
  if (ip !== null) return isUnspecified(ip) ? ["wildcard", "is the unspecified address, which means any host"] : null;
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (!name) return ["invalid", "is empty"];
  if (utf8Len(name) > 253) return ["invalid", "is longer than 253 characters"];
  for (const label of name.split(".")) {
    if (!label || utf8Len(label) > 63) return ["invalid", "has an empty label or one longer than 63 characters"];
    if (label.startsWith("-") || label.endsWith("-")) return ["invalid", 'has a label starting or ending with "-"'];
    if (!/^[A-Za-z0-9_-]+$/.test(label)) return ["invalid", 'has characters other than letters, digits, "-", "_" and "."'];
  }
  return null;
}

/** Code point order, which is Rust's byte order on UTF-8 strings. */
export function cmpCodePoints(x: string, y: string): number {
  const xs = [...x].map((c) => c.codePointAt(0)!);
  const ys = [...y].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) if (xs[i] !== ys[i]) return xs[i] - ys[i];
  return xs.length - ys.length;
}

class Checker {
  readonly findings: Finding[] = [];

  add(code: string, at: string, message: string, hint: string): void {
    this.findings.push({ code, severity: code.startsWith("W_") ? "warning" : "error", path: at, message, hint });
  }

  ident(at: string, what: string, value: string): void {
    if (!isId(value)) {
      this.add("E_ID_INVALID", at, `${what} "${value}" is not a valid id`, 'use 1 to 63 characters: a lowercase letter, then lowercase letters, digits or "-" (e.g. "hello-app")');
    }
  }

  host(at: string, host: string, what: string): void {
    const problem = hostProblem(host);
    if (problem === null) return;
    const [kind, why] = problem;
    if (kind === "wildcard") {
      this.add("E_NETWORK_WILDCARD", at, `${what} "${host}" ${why}`, 'list each host the app needs by name or address, e.g. "pypi.org"; wildcards and ranges are not allowed');
    } else {
      this.add("E_INVALID_VALUE", at, `${what} "${host}" ${why}`, "give a DNS name or an IP address, without scheme, port or path");
    }
  }

  port(at: string, port: number): void {
    if (port === 0) this.add("E_INVALID_VALUE", at, "port 0 is not a port", "use the port the service listens on, 1 to 65535");
  }

  argv(at: string, argv: string[], what: string): void {
    if (!argv.length) this.add("E_EMPTY_COMMAND", at, `${what} has an empty argv`, 'give the program and its arguments, e.g. ["node", "app.js"]');
    else if (!argv[0].trim()) this.add("E_EMPTY_COMMAND", at + "/0", `${what} has an empty program name`, 'put the program to run first, e.g. ["node", "app.js"]');
  }

  hooks(at: string, hooks: Json): void {
    for (const phase of spec.PHASES) {
      hooks[phase].forEach((cmd: Json, i: number) => {
        const p = `${at}/${phase}/${i}`;
        if (cmd.kind === "shell") {
          if (!cmd.line.trim()) this.add("E_EMPTY_COMMAND", p + "/line", "hook shell line is empty", "write the command to run, or remove the hook");
        } else {
          this.argv(p + "/argv", cmd.argv, "hook");
        }
      });
    }
  }
}

/** Every finding for workload `ir`, sorted by JSON pointer then code (as mvm_ir does). */
export function validate(ir: Json): Finding[] {
  const c = new Checker();
  c.ident("/id", "workload id", ir.id);
  if (ir.apps.length !== 1) {
    c.add("E_APPS_COUNT", "/apps", `the workload has ${ir.apps.length} apps; IR 0.1 needs exactly one`, "declare exactly one app per workload; split several apps into separate workloads");
  }
  const volumes = new Set<string>();
  ir.volumes.forEach((vol: Json, i: number) => {
    const p = `/volumes/${i}`;
    c.ident(p + "/name", "volume name", vol.name);
    if (volumes.has(vol.name)) c.add("E_INVALID_VALUE", p + "/name", `volume "${vol.name}" is declared more than once`, "give each volume a distinct name, or remove the duplicate");
    volumes.add(vol.name);
    if (vol.size_mb === 0) c.add("E_INVALID_VALUE", p + "/size_mb", "volume size is 0 MiB", "give the volume a size of at least 1 MiB");
  });
  ir.apps.forEach((app: Json, i: number) => checkApp(c, `/apps/${i}`, app));
  // Array.prototype.sort is stable, like Rust's sort_by.
  return c.findings.sort((x, y) => cmpCodePoints(x.path, y.path) || CODE_ORDER.indexOf(x.code) - CODE_ORDER.indexOf(y.code));
}

function checkApp(c: Checker, at: string, app: Json): void {
  c.ident(at + "/name", "app name", app.name);
  checkSource(c, at + "/source", app.source);
  checkImage(c, at + "/image", app.image);
  for (const [field, low, high, unit] of spec.RANGES) {
    const value = app.resources[field];
    if (value < low || value > high) {
      c.add("E_RESOURCES_RANGE", `${at}/resources/${field}`, `${field} ${value}${unit} is outside ${low}..=${high}`, `set ${field} between ${low} and ${high}${unit}`);
    }
  }
  const deps = app.dependencies;
  if (deps.kind !== "none") {
    const why = deps.lockfile ? sourceEscape(deps.lockfile) : "is empty";
    if (why) {
      c.add("E_INVALID_VALUE", at + "/dependencies/lockfile", `lockfile path "${deps.lockfile}" ${why}`, 'give the lockfile\'s path relative to the source path, e.g. "uv.lock" or "package-lock.json"');
    }
  }
  checkNetwork(c, at + "/network", app.network, app.threat_tier);
  checkEnv(c, at + "/env", app.env);
  checkSecretBindings(c, at + "/env", app.env, app.network);
  checkEntrypoints(c, at + "/entrypoints", app.entrypoints);
  c.hooks(at + "/hooks", app.hooks);
  const seen = new Set<string>();
  app.addons.forEach((addon: Json, i: number) => {
    const p = `${at}/addons/${i}`;
    c.ident(p + "/name", "addon name", addon.name);
    if (seen.has(addon.name)) c.add("E_INVALID_VALUE", p + "/name", `addon "${addon.name}" is attached more than once`, "attach each addon once");
    seen.add(addon.name);
    if (!addon.source.path.trim()) c.add("E_INVALID_VALUE", p + "/source/path", "addon source path is empty", "give the directory holding the addon");
    c.hooks(p + "/hooks", addon.hooks);
  });
}

function checkSource(c: Checker, at: string, source: Json): void {
  if (source.kind !== "local_path") {
    c.add("E_SOURCE_KIND_UNSUPPORTED", at + "/kind", `source kind "${source.kind}" is reserved and not supported in IR 0.1`, "use mvm.localPath(...) pointing at the app's code");
    return;
  }
  const why = sourceEscape(source.path);
  if (why) c.add("E_SOURCE_ESCAPES", at + "/path", `source path "${source.path}" ${why}`, 'use a path relative to the declaration\'s directory that stays inside it, e.g. "." or "src"');
  for (const field of ["include", "exclude"]) {
    source[field].forEach((glob: string, i: number) => {
      const problem = glob ? sourceEscape(glob) : "is empty";
      if (problem) c.add("E_INVALID_VALUE", `${at}/${field}/${i}`, `glob "${glob}" ${problem}`, 'write a glob relative to the source path, e.g. "**/*.ts" or "tests/**"');
    });
  }
}

function checkImage(c: Checker, at: string, image: Json): void {
  if (image.kind === "nix_packages") {
    image.packages.forEach((pkg: string, i: number) => {
      if (!spec.PATTERN_NIX_PACKAGE.test(pkg)) {
        c.add("E_INVALID_VALUE", `${at}/packages/${i}`, `"${pkg}" is not a nix package attribute name`, 'use a nixpkgs attribute such as "python312" or "python3Packages.numpy" (letters, digits, _ . + -)');
      }
    });
    return;
  }
  if (!image.reference.trim()) c.add("E_INVALID_VALUE", at + "/reference", "oci_base reference is empty", 'name an image, e.g. "debian:12-slim"');
  if (image.digest === null) {
    c.add("W_OCI_MUTABLE", at + "/digest", `oci_base "${image.reference}" has no digest; the tag can move and change what gets built`, `pin the image: mvm.ociImage("${image.reference}", { digest: "sha256:<64 hex>" })`);
  } else if (!spec.PATTERN_SHA256_DIGEST.test(image.digest)) {
    c.add("E_INVALID_VALUE", at + "/digest", `digest "${image.digest}" is not "sha256:" followed by 64 lowercase hex digits`, "copy the full sha256 digest of the image, or leave digest out to build from the tag");
  }
}

function checkNetwork(c: Checker, at: string, net: Json, tier: string): void {
  const closed = net.mode === "none";
  if (net.mode === "host" && tier === "untrusted") {
    c.add("E_HOST_NETWORK_UNTRUSTED", at + "/mode", `network mode "host" on an untrusted app gives it the host's network`, 'use mode "bridge" with an egress allowlist, or mark the app threat_tier "trusted" if you trust its code');
  }
  if (closed && net.ports.length) c.add("E_NETWORK_EGRESS_CLOSED", at + "/ports", 'ports are forwarded but network mode is "none"', 'set network mode to "bridge", or remove the ports');
  if (closed && net.egress.allowlist.length) {
    c.add("E_NETWORK_EGRESS_CLOSED", at + "/egress/allowlist", 'an egress allowlist is given but network mode is "none"', 'set network mode to "bridge", or empty the allowlist');
  }
  if (closed && net.dns.kind !== "none") c.add("E_DNS_WITHOUT_NETWORK", at + "/dns", 'dns is configured but network mode is "none"', 'set network mode to "bridge", or drop dns');
  const seen = new Set<string>();
  net.ports.forEach((port: Json, i: number) => {
    const p = `${at}/ports/${i}/guest`;
    if (port.guest === 0) c.add("E_INVALID_VALUE", p, "guest port 0 is not a port", "use the port the app listens on, 1 to 65535");
    const key = `${port.guest}/${port.proto}`;
    if (seen.has(key)) c.add("E_INVALID_VALUE", p, `guest port ${port.guest} is forwarded more than once`, "forward each guest port once per protocol");
    seen.add(key);
  });
  net.egress.allowlist.forEach((hp: Json, i: number) => {
    const p = `${at}/egress/allowlist/${i}`;
    c.host(p + "/host", hp.host, "egress host");
    c.port(p + "/port", hp.port);
  });
  if (net.dns.kind === "resolver") {
    c.host(at + "/dns/host", net.dns.host, "dns resolver");
    c.port(at + "/dns/port", net.dns.port);
  }
}

function checkEnv(c: Checker, at: string, env: Json): void {
  for (const key of Object.keys(env).sort(cmpCodePoints)) {
    const value = env[key];
    const p = `${at}/${seg(key)}`;
    if (!spec.PATTERN_ENV_NAME.test(key)) c.add("E_ENV_NAME_INVALID", p, `env name "${key}" is not a valid variable name`, 'use letters, digits and "_", not starting with a digit (e.g. "MODEL_PATH")');
    if (value.kind === "secret_ref") {
      if (!spec.PATTERN_SECRET_NAME.test(value.name)) {
        c.add("E_SECRET_NAME_INVALID", p + "/name", `secret name "${value.name}" is not valid`, 'use 1 to 128 characters: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. "api-key")');
      }
    } else if (looksLikeCredential(key)) {
      c.add("W_SECRET_LITERAL", p + "/value", `env "${key}" looks like a credential but holds a literal value that is stored in the IR and image`, 'pass it as a secret instead: mvm.secret("name")');
    }
  }
}

// Rust's to_ascii_lowercase: toLowerCase would also fold non-ASCII letters.
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
/** A host as compared with grants: case-insensitive, a trailing dot is the same host. */
const hostKey = (host: string) => asciiLower(host.endsWith(".") ? host.slice(0, -1) : host);
const HOST_OWNED: readonly string[] = spec.HOST_OWNED_HEADERS;

/** Why `name` cannot be the header a secret is set into, if it cannot. */
export function headerProblem(name: string): string | null {
  if (!name) return "is empty";
  if (!spec.PATTERN_HEADER_NAME.test(name)) return "is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only, no spaces or \":\")";
  if (HOST_OWNED.includes(asciiLower(name))) return "is a header the host sets itself on every request";
  return null;
}

interface Setter {
  key: string;
  name: string;
  /** Lowercase, for comparing. */
  header: string;
  shown: string;
  /** Host keys; empty: every grant. */
  hosts: Set<string>;
  path: string;
}

const smallest = (s: Iterable<string>) => [...s].sort(cmpCodePoints)[0];

/**
 * E_SECRET_HEADER_INVALID, E_SECRET_HOST_*, W_SECRET_UNBOUND and
 * E_SECRET_BINDING_CONFLICT, as mvm_ir's validate/bindings.rs raises them.
 */
function checkSecretBindings(c: Checker, at: string, env: Json, net: Json): void {
  const closed = net.mode === "none";
  const grants = new Set<string>(closed ? [] : net.egress.allowlist.map((hp: Json) => hostKey(hp.host)));
  const setters: Setter[] = [];
  for (const key of Object.keys(env).sort(cmpCodePoints)) {
    const value = env[key];
    if (value.kind !== "secret_ref") continue;
    const p = `${at}/${seg(key)}`;
    const { name, type: auth, header, hosts } = value;
    const headerOk = checkSecretHeader(c, p, name, auth, header);
    checkSecretHosts(c, p, name, auth, hosts, grants, closed);
    if (!headerOk || auth === "token" || (auth === "header" && header === null)) continue;
    const keys = new Set<string>(hosts.map(hostKey));
    if (auth === "header") setters.push({ key, name, header: asciiLower(header), shown: header, hosts: keys, path: p + "/header" });
    else setters.push({ key, name, header: "authorization", shown: "Authorization", hosts: keys, path: p + "/type" });
  }
  setters.forEach((later, j) => {
    for (const earlier of setters.slice(0, j)) {
      if (earlier.header !== later.header) continue;
      let shared: string;
      if (!earlier.hosts.size && !later.hosts.size) shared = "every egress grant";
      else if (!earlier.hosts.size) shared = `"${smallest(later.hosts)}"`;
      else if (!later.hosts.size) shared = `"${smallest(earlier.hosts)}"`;
      else {
        const both = [...earlier.hosts].filter((h) => later.hosts.has(h));
        if (!both.length) continue;
        shared = `"${smallest(both)}"`;
      }
      c.add(
        "E_SECRET_BINDING_CONFLICT",
        later.path,
        `secrets "${earlier.name}" (env ${earlier.key}) and "${later.name}" (env ${later.key}) both set the ${later.shown} header on requests to ${shared}`,
        "bind them to different hosts, or keep one of them; the host could not tell which to send",
      );
      break;
    }
  });
}

function checkSecretHeader(c: Checker, p: string, name: string, auth: string, header: string | null): boolean {
  let message: string;
  let hint: string;
  if (auth === "header" && header === null) {
    message = `secret "${name}" has type "header" but no header name`;
    hint = 'name the header the service reads the credential from, e.g. header: "X-Api-Key" (or use type "bearer" for Authorization: Bearer)';
  } else if (auth === "header") {
    const why = headerProblem(header as string);
    if (why === null) return true;
    message = `header "${header}" of secret "${name}" ${why}`;
    hint = 'give the header the service reads the credential from, e.g. "X-Api-Key"; framing, connection and proxy headers (Host, Content-Length, Connection, Proxy-Authorization, ...) are the host\'s';
  } else if (header !== null) {
    message = `secret "${name}" names header "${header}" but its type is "${auth}"; only type "header" uses a header name`;
    hint = 'set type: "header" to send the secret in that header, or drop header';
  } else {
    return true;
  }
  c.add("E_SECRET_HEADER_INVALID", p + "/header", message, hint);
  return false;
}

function checkSecretHosts(c: Checker, p: string, name: string, auth: string, hosts: string[], grants: Set<string>, closed: boolean): void {
  if (!hosts.length && auth !== "token") {
    c.add("W_SECRET_UNBOUND", p + "/hosts", `secret "${name}" has type "${auth}" and no hosts: the host adds it to every request to any of the app's egress grants`, 'bind it to the hosts that need it, e.g. hosts: ["api.openai.com"]');
  }
  hosts.forEach((host, i) => {
    const hp = `${p}/hosts/${i}`;
    const problem = hostProblem(host);
    if (problem !== null && problem[0] === "wildcard") {
      c.add("E_NETWORK_WILDCARD", hp, `bound host "${host}" of secret "${name}" ${problem[1]}`, 'bind the secret to each host by name or address, e.g. hosts: ["api.openai.com"]; wildcards and ranges are not allowed');
    } else if (problem !== null) {
      c.add("E_SECRET_HOST_INVALID", hp, `bound host "${host}" of secret "${name}" ${problem[1]}`, 'give a DNS name or an IP address, without scheme, port or path, e.g. "api.openai.com"');
    } else if (!grants.has(hostKey(host))) {
      c.add(
        "E_SECRET_HOST_NOT_GRANTED",
        hp,
        closed
          ? `secret "${name}" is bound to "${host}", but network mode is "none": the app has no egress grants`
          : `secret "${name}" is bound to "${host}", which is not one of the app's egress grants`,
        `grant it as well (mvm.network({ mode: "deny", allowHttps: ["${host}"] }), or an egress allowlist entry { host: "${host}", port: 443 }), or remove it from the secret's hosts`,
      );
    }
  });
}

function checkEntrypoints(c: Checker, at: string, eps: Json[]): void {
  const primaries = eps.map((ep, i) => (ep.primary ? i : -1)).filter((i) => i >= 0);
  if (!primaries.length) {
    c.add("E_PRIMARY_ENTRYPOINT", at, eps.length ? "no entrypoint is primary" : "the app has no entrypoint", 'declare at least one entrypoint and set "primary": true on exactly one');
  }
  for (const i of primaries.slice(1)) {
    c.add("E_PRIMARY_ENTRYPOINT", `${at}/${i}/primary`, `entrypoint "${eps[i].name}" is primary, but so is "${eps[primaries[0]].name}"`, 'set "primary": true on exactly one entrypoint');
  }
  const seen = new Set<string>();
  eps.forEach((ep, i) => {
    const p = `${at}/${i}`;
    c.ident(p + "/name", "entrypoint name", ep.name);
    if (seen.has(ep.name)) {
      c.add("E_PRIMARY_ENTRYPOINT", p + "/name", `entrypoint name "${ep.name}" is used more than once`, "give each entrypoint a distinct name; `mvmctl invoke --entrypoint NAME` selects by it");
    }
    seen.add(ep.name);
    const why = guestPathProblem(ep.working_dir);
    if (why) c.add("E_INVALID_VALUE", p + "/working_dir", `working_dir "${ep.working_dir}" ${why}`, 'use an absolute guest path such as "/app"');
    if (ep.kind === "function") {
      const dollar = ep.language === "node";
      if (!ep.module.split(".").every((part: string) => isIdentifier(part, dollar))) {
        c.add("E_INVALID_VALUE", p + "/module", `module "${ep.module}" is not a dotted module path`, 'name the module as identifiers joined by dots, e.g. "app" or "pkg.handlers"');
      }
      if (!isIdentifier(ep.function, dollar)) {
        c.add("E_INVALID_VALUE", p + "/function", `function "${ep.function}" is not an identifier`, 'give the function\'s plain name, e.g. "greet" (letters, digits, "_")');
      }
    } else {
      c.argv(p + "/command", ep.command, "command entrypoint");
    }
  });
}
