/**
 * The declaration helpers (the allowlist of docs/sdk.md), each under its
 * snake_case name and its camelCase alias. Each checks its arguments and
 * returns a Helper holding the IR it lowers to. No side effects.
 */
import * as a from "./args.js";
import { DeclarationError } from "./errors.js";
import { Helper } from "./helper.js";
import * as spec from "./spec.js";
import { cmpCodePoints } from "./validate.js";
function portNumber(where, value, low) {
    const n = a.integer(where, value);
    if (n < low || n > spec.PORT_MAX) {
        throw new DeclarationError("E_INVALID_VALUE", `${where} must be a port number in ${low}..${spec.PORT_MAX}, got ${n}`, `use a port between ${low} and ${spec.PORT_MAX}`);
    }
    return n;
}
// --- source ----------------------------------------------------------------
export function local_path(path, opts) {
    const b = a.bind(a.sig("local_path"), [...arguments]);
    const inc = a.optionalStringList("mvm.local_path(include)", b.include);
    const exc = a.optionalStringList("mvm.local_path(exclude)", b.exclude);
    return new Helper("local_path", {
        kind: "local_path",
        path: b.path === undefined ? spec.DEFAULT_LOCAL_PATH_PATH : a.string("mvm.local_path(path)", b.path),
        include: inc ?? [...spec.DEFAULT_LOCAL_PATH_INCLUDE],
        exclude: exc ?? [...spec.DEFAULT_LOCAL_PATH_EXCLUDE],
    });
}
// --- image -----------------------------------------------------------------
export function python_image(opts) {
    const b = a.bind(a.sig("python_image"), [...arguments]);
    const version = b.python === undefined ? spec.DEFAULT_PYTHON_IMAGE_PYTHON : a.string("mvm.python_image(python)", b.python);
    if (!/^3\.[0-9]+$/.test(version)) {
        throw new DeclarationError("E_INVALID_VALUE", `mvm.python_image(python) must look like "3.13", got ${JSON.stringify(version)}`, 'write the Python version as "3.MINOR", e.g. "3.13"');
    }
    const extra = a.optionalStringList("mvm.python_image(packages)", b.packages) ?? [];
    return new Helper("python_image", { kind: "nix_packages", packages: ["python3" + version.slice(2), ...extra] });
}
export function node_image(opts) {
    const b = a.bind(a.sig("node_image"), [...arguments]);
    // An integer major version (node: 22) is accepted, as the static compiler does.
    const version = b.node === undefined ? spec.DEFAULT_NODE_IMAGE_NODE : typeof b.node === "number" && Number.isSafeInteger(b.node) ? String(b.node) : a.string("mvm.node_image(node)", b.node);
    if (!/^[0-9]+$/.test(version)) {
        throw new DeclarationError("E_INVALID_VALUE", `mvm.node_image(node) must be a major version like "22", got ${JSON.stringify(version)}`, 'write the Node.js major version as a string, e.g. "22"');
    }
    const extra = a.optionalStringList("mvm.node_image(packages)", b.packages) ?? [];
    return new Helper("node_image", { kind: "nix_packages", packages: ["nodejs_" + version, ...extra] });
}
export function nix_packages(packages) {
    const b = a.bind(a.sig("nix_packages"), [...arguments]);
    return new Helper("nix_packages", { kind: "nix_packages", packages: a.stringList("mvm.nix_packages(packages)", b.packages) });
}
export function oci_image(reference, opts) {
    const b = a.bind(a.sig("oci_image"), [...arguments]);
    return new Helper("oci_image", {
        kind: "oci_base",
        reference: a.string("mvm.oci_image(reference)", b.reference),
        digest: a.optionalString("mvm.oci_image(digest)", b.digest),
    });
}
export function resources(opts) {
    const b = a.bind(a.sig("resources"), [...arguments]);
    if (b.cpu !== undefined && b.cpu_cores !== undefined) {
        throw new DeclarationError("E_KWARG_CONFLICT", "mvm.resources got both cpu and cpu_cores", "cpu is an alias of cpu_cores; pass only one of them");
    }
    const cores = b.cpu !== undefined
        ? a.integer("mvm.resources(cpu)", b.cpu)
        : b.cpu_cores !== undefined
            ? a.integer("mvm.resources(cpu_cores)", b.cpu_cores)
            : spec.DEFAULT_RESOURCES_CPU_CORES;
    return new Helper("resources", {
        cpu_cores: cores,
        memory_mb: b.memory_mb === undefined ? spec.DEFAULT_RESOURCES_MEMORY_MB : a.integer("mvm.resources(memory_mb)", b.memory_mb),
        rootfs_size_mb: b.rootfs_size_mb === undefined ? spec.DEFAULT_RESOURCES_ROOTFS_SIZE_MB : a.integer("mvm.resources(rootfs_size_mb)", b.rootfs_size_mb),
    });
}
// Without a lockfile, each tool's own is used.
const PYTHON_LOCKFILES = spec.LOCKFILES_PYTHON_DEPS;
const NODE_LOCKFILES = spec.LOCKFILES_NODE_DEPS;
const PYTHON_TOOL_ALIASES = spec.ALIASES_PYTHON_DEPS_TOOL;
export function python_deps(opts) {
    const b = a.bind(a.sig("python_deps"), [...arguments]);
    let tool = b.tool === undefined
        ? spec.DEFAULT_PYTHON_DEPS_TOOL
        : a.oneOf("mvm.python_deps(tool)", a.string("mvm.python_deps(tool)", b.tool), spec.CHOICES_PYTHON_DEPS_TOOL);
    tool = PYTHON_TOOL_ALIASES[tool] ?? tool;
    const lockfile = b.lockfile === undefined ? PYTHON_LOCKFILES[tool] : a.string("mvm.python_deps(lockfile)", b.lockfile);
    return new Helper("python_deps", { kind: "python", lockfile, tool });
}
export function node_deps(opts) {
    const b = a.bind(a.sig("node_deps"), [...arguments]);
    const tool = b.tool === undefined ? spec.DEFAULT_NODE_DEPS_TOOL : a.oneOf("mvm.node_deps(tool)", a.string("mvm.node_deps(tool)", b.tool), spec.CHOICES_NODE_DEPS_TOOL);
    const lockfile = b.lockfile === undefined ? NODE_LOCKFILES[tool] : a.string("mvm.node_deps(lockfile)", b.lockfile);
    return new Helper("node_deps", { kind: "node", lockfile, tool });
}
export function no_deps() {
    a.bind(a.sig("no_deps"), [...arguments]);
    return new Helper("no_deps", { kind: "none" });
}
// --- network ---------------------------------------------------------------
export function host_port(host, port) {
    const b = a.bind(a.sig("host_port"), [...arguments]);
    return new Helper("host_port", { host: a.string("mvm.host_port(host)", b.host), port: portNumber("mvm.host_port(port)", b.port, spec.PORT_MIN) });
}
export function egress(allowlist) {
    const b = a.bind(a.sig("egress"), [...arguments]);
    if (!Array.isArray(b.allowlist))
        throw a.typeError("mvm.egress(allowlist)", "an array of mvm.host_port(...)", b.allowlist);
    return new Helper("egress", b.allowlist.map((x, i) => (a.isOptions(x) ? host_port(x).value : a.expect(`mvm.egress(allowlist)[${i}]`, x, "host_port").value)));
}
export function port(guest, opts) {
    const b = a.bind(a.sig("port"), [...arguments]);
    return new Helper("port", {
        guest: portNumber("mvm.port(guest)", b.guest, spec.PORT_MIN),
        // A host-side 0 means "any free port".
        host: b.host === undefined ? spec.DEFAULT_PORT_HOST : portNumber("mvm.port(host)", b.host, 0),
        proto: b.proto === undefined ? spec.DEFAULT_PORT_PROTO : a.oneOf("mvm.port(proto)", a.string("mvm.port(proto)", b.proto), spec.CHOICES_PORT_PROTO),
    });
}
export function dns_system() {
    a.bind(a.sig("dns_system"), [...arguments]);
    return new Helper("dns_system", { kind: "system" });
}
export function dns_none() {
    a.bind(a.sig("dns_none"), [...arguments]);
    return new Helper("dns_none", { kind: "none" });
}
export function dns_resolver(host, opts) {
    const b = a.bind(a.sig("dns_resolver"), [...arguments]);
    return new Helper("dns_resolver", {
        kind: "resolver",
        host: a.string("mvm.dns_resolver(host)", b.host),
        port: b.port === undefined ? spec.DEFAULT_DNS_RESOLVER_PORT : portNumber("mvm.dns_resolver(port)", b.port, spec.PORT_MIN),
    });
}
function portEntry(where, value) {
    // A { guest, host, proto } object is read as mvm.port's options.
    if (a.isOptions(value))
        return port(value).value;
    return a.expect(where, value, "port").value;
}
export function network(opts) {
    const b = a.bind(a.sig("network"), [...arguments]);
    let mode = b.mode === undefined ? spec.DEFAULT_NETWORK_MODE : a.oneOf("mvm.network(mode)", a.string("mvm.network(mode)", b.mode), spec.CHOICES_NETWORK_MODE);
    const ports = b.ports ?? [];
    if (!Array.isArray(ports))
        throw a.typeError("mvm.network(ports)", "an array of mvm.port(...)", ports);
    const portList = ports.map((p, i) => portEntry(`mvm.network(ports)[${i}]`, p));
    let allow = [];
    if (b.egress !== undefined)
        allow = [...(Array.isArray(b.egress) ? egress(b.egress) : a.expect("mvm.network(egress)", b.egress, "egress")).value];
    let dns = b.dns === undefined ? null : a.expect("mvm.network(dns)", b.dns, "dns_system", "dns_none", "dns_resolver").value;
    const https = b.allow_https === undefined ? null : a.stringList("mvm.network(allow_https)", b.allow_https);
    if (mode === "deny") {
        for (const name of ["egress", "dns"]) {
            if (b[name] !== undefined) {
                throw new DeclarationError("E_KWARG_CONFLICT", `mode "deny" cannot be combined with ${name}`, 'use mode "bridge" with an explicit egress allowlist, or allow_https: [...] with mode "deny"');
            }
        }
        if (https !== null && https.length) {
            allow.push(...https.map((host) => ({ host, port: 443 })));
            dns = { kind: "system" };
            mode = "bridge";
        }
        else {
            mode = "none";
        }
    }
    else if (https !== null) {
        if (mode !== "bridge") {
            throw new DeclarationError("E_KWARG_CONFLICT", `allow_https cannot be used with mode "${mode}"`, 'use mode "deny" (closed except these HTTPS hosts) or mode "bridge"');
        }
        allow.push(...https.map((host) => ({ host, port: 443 })));
        // Names in allow_https must resolve.
        dns ??= { kind: "system" };
    }
    const unique = new Map();
    for (const e of allow)
        unique.set(JSON.stringify([e.host, e.port]), e);
    // Same order as the static compiler: by host (code points), then port.
    const sorted = [...unique.values()].sort((x, y) => cmpCodePoints(x.host, y.host) || x.port - y.port);
    return new Helper("network", { mode, ports: portList, egress: { allowlist: sorted }, dns: dns ?? { kind: "none" } });
}
// --- env -------------------------------------------------------------------
export function literal(value) {
    const b = a.bind(a.sig("literal"), [...arguments]);
    return new Helper("literal", { kind: "literal", value: a.string("mvm.literal(value)", b.value) });
}
export function secret(name, opts) {
    const b = a.bind(a.sig("secret"), [...arguments]);
    const type = b.type === undefined ? spec.DEFAULT_SECRET_TYPE : a.oneOf("mvm.secret(type)", a.string("mvm.secret(type)", b.type), spec.CHOICES_SECRET_TYPE);
    return new Helper("secret", {
        kind: "secret_ref",
        name: a.string("mvm.secret(name)", b.name),
        type,
        header: a.optionalString("mvm.secret(header)", b.header),
        hosts: a.optionalStringList("mvm.secret(hosts)", b.hosts) ?? [],
    }, a.optionalString("mvm.secret(var)", b.var));
}
// --- entrypoints and hooks ---------------------------------------------------
export function entrypoint_function(opts) {
    const b = a.bind(a.sig("entrypoint_function"), [...arguments]);
    return new Helper("entrypoint_function", {
        kind: "function",
        module: a.string("mvm.entrypoint_function(module)", b.module),
        function: a.string("mvm.entrypoint_function(function)", b.function),
        primary: b.primary === undefined ? spec.DEFAULT_ENTRYPOINT_FUNCTION_PRIMARY : a.boolean("mvm.entrypoint_function(primary)", b.primary),
        name: a.optionalString("mvm.entrypoint_function(name)", b.name),
    });
}
export function entrypoint(opts) {
    const b = a.bind(a.sig("entrypoint"), [...arguments]);
    return new Helper("entrypoint", {
        kind: "command",
        command: a.stringList("mvm.entrypoint(command)", b.command),
        primary: b.primary === undefined ? spec.DEFAULT_ENTRYPOINT_PRIMARY : a.boolean("mvm.entrypoint(primary)", b.primary),
        name: a.optionalString("mvm.entrypoint(name)", b.name),
    });
}
export function hook(cmd) {
    const b = a.bind(a.sig("hook"), [...arguments]);
    if (typeof b.cmd === "string")
        return new Helper("hook", { kind: "shell", line: b.cmd });
    return new Helper("hook", { kind: "argv", argv: a.stringList("mvm.hook(cmd)", b.cmd) });
}
/** Lower one hook phase argument (declarations.md, "Hooks"). */
export function hookList(where, value) {
    if (value === undefined || value === null)
        return [];
    if (typeof value === "string")
        return [{ kind: "shell", line: value }];
    if (value instanceof Helper && value.helper === "hook")
        return [value.value];
    if (Array.isArray(value)) {
        if (value.every((x) => typeof x === "string"))
            return value.length ? [{ kind: "argv", argv: [...value] }] : [];
        return value.map((item, i) => {
            if (typeof item === "string")
                return { kind: "shell", line: item };
            if (item instanceof Helper && item.helper === "hook")
                return item.value;
            if (Array.isArray(item))
                return { kind: "argv", argv: a.stringList(`${where}[${i}]`, item) };
            throw a.typeError(`${where}[${i}]`, "a string, an array of strings or mvm.hook(...)", item);
        });
    }
    throw a.typeError(where, "a string, an array of strings, mvm.hook(...) or an array of those", value);
}
export function addon(opts) {
    const b = a.bind(a.sig("addon"), [...arguments]);
    const hooks = {};
    for (const phase of spec.PHASES)
        hooks[phase] = hookList(`mvm.addon(${phase})`, b[phase]);
    return new Helper("addon", {
        name: a.string("mvm.addon(name)", b.name),
        source: { kind: "local", path: a.string("mvm.addon(path)", b.path) },
        hooks,
    });
}
