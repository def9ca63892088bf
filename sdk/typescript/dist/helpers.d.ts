/**
 * The declaration helpers (the allowlist of docs/sdk.md), each under its
 * snake_case name and its camelCase alias. Each checks its arguments and
 * returns a Helper holding the IR it lowers to. No side effects.
 */
import { Helper } from "./helper.js";
type Opts = Record<string, unknown>;
export declare function local_path(path?: string | Opts, opts?: Opts): Helper;
export declare function python_image(opts?: {
    python?: string;
    packages?: string[];
}): Helper;
export declare function node_image(opts?: {
    node?: string | number;
    packages?: string[];
}): Helper;
export declare function nix_packages(packages: string[] | {
    packages: string[];
}): Helper;
export declare function oci_image(reference: string | Opts, opts?: {
    digest?: string | null;
}): Helper;
export interface ResourcesOptions {
    cpu_cores?: number;
    cpuCores?: number;
    cpu?: number;
    memory_mb?: number;
    memoryMb?: number;
    rootfs_size_mb?: number;
    rootfsSizeMb?: number;
}
export declare function resources(opts?: ResourcesOptions): Helper;
export declare function python_deps(opts?: {
    lockfile?: string;
    tool?: "uv" | "pip-tools" | "pip_tools";
}): Helper;
export declare function node_deps(opts?: {
    lockfile?: string;
    tool?: "npm" | "pnpm" | "yarn";
}): Helper;
export declare function no_deps(): Helper;
export declare function host_port(host: string | Opts, port?: number): Helper;
export declare function egress(allowlist: Helper[] | {
    allowlist: Helper[];
}): Helper;
export declare function port(guest: number | Opts, opts?: {
    host?: number;
    proto?: "tcp" | "udp";
}): Helper;
export declare function dns_system(): Helper;
export declare function dns_none(): Helper;
export declare function dns_resolver(host: string | Opts, opts?: {
    port?: number;
}): Helper;
export interface NetworkOptions {
    mode?: "none" | "bridge" | "host" | "deny";
    ports?: unknown[];
    egress?: Helper | Helper[];
    dns?: Helper;
    allow_https?: string[];
    allowHttps?: string[];
}
export declare function network(opts?: NetworkOptions): Helper;
export declare function literal(value: string | {
    value: string;
}): Helper;
export interface SecretOptions {
    var?: string;
    /**
     * How the host applies the secret to a request it makes for the guest
     * (`mvm.webFetch`): "token" (default) only where the guest put the token,
     * "bearer" / "basic" as `Authorization`, "header" in the header named by `header`.
     */
    type?: "token" | "bearer" | "basic" | "header";
    /** The only hosts it may be sent to (each an egress grant); without them, any of the app's grants. */
    hosts?: string[];
    /** The header's name, for type "header" only. */
    header?: string;
}
export declare function secret(name: string | Opts, opts?: SecretOptions): Helper;
export declare function entrypoint_function(opts: {
    module: string;
    function: string;
    primary?: boolean;
    name?: string;
}): Helper;
export declare function entrypoint(opts: {
    command: string[];
    primary?: boolean;
    name?: string;
}): Helper;
export declare function hook(cmd: string | string[] | {
    cmd: string | string[];
}): Helper;
/** Lower one hook phase argument (declarations.md, "Hooks"). */
export declare function hookList(where: string, value: unknown): unknown[];
export declare function addon(opts: {
    name: string;
    path: string;
    before_build?: unknown;
    before_start?: unknown;
    after_start?: unknown;
    before_stop?: unknown;
    beforeBuild?: unknown;
    beforeStart?: unknown;
    afterStart?: unknown;
    beforeStop?: unknown;
}): Helper;
export {};
