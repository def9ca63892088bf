/**
 * mvm-sdk: declare a microVM workload next to the function it runs.
 *
 * `mvm.app({...})(fn)` records a declaration; `mvm.emitJson()` prints it as
 * canonical Workload IR, byte-identical to `mvmctl compile app.ts`. Every
 * helper is exported under its snake_case name and its camelCase alias.
 * `Sandbox` is the runtime SDK (live, or record mode). `webFetch`/`webSearch` are
 * for code running in the guest: the host makes the request, applying the
 * app's secrets (docs/secrets.md). See docs/sdk.md.
 */
import { addon, dns_none, dns_resolver, dns_system, egress, entrypoint, entrypoint_function, hook, host_port, literal, local_path, network, nix_packages, no_deps, node_deps, node_image, oci_image, port, python_deps, python_image, resources, secret } from "./helpers.js";
import { app, emitJson, reset, toIr, workload } from "./declaration.js";
export { DeclarationError, SandboxError, ApiError, SandboxNotFound, TemplateNotFound, FileNotFound, TimeoutError, PolicyRefused, SecretsMissing, EgressDenied, Unauthorized, ServerUnavailable, CommandExitError, FunctionError, } from "./errors.js";
export { Helper } from "./helper.js";
export { canonicalJson } from "./canonical.js";
export { validate, type Finding } from "./validate.js";
export { Sandbox, Commands, Files, CommandHandle, CommandResult, type SandboxOptions, type SandboxInfo, type RunOptions, type WaitOptions, type OnOutput, type CommandInfo, type EntryInfo, type StatInfo, type ReadFormat, } from "./sandbox.js";
export { Client, mvmHome, type ClientOptions } from "./api.js";
export { SDK_VERSION as version } from "./recording.js";
export { webFetch, webSearch, WebError, WebResponse, type WebErrorCode, type WebFetchOptions, type SearchHit } from "./web.js";
export type { AppOptions } from "./declaration.js";
export type { SecretOptions } from "./helpers.js";
export { app, workload, emitJson, toIr, reset, addon, dns_none, dns_resolver, dns_system, egress, entrypoint, entrypoint_function, hook, host_port, literal, local_path, network, nix_packages, no_deps, node_deps, node_image, oci_image, port, python_deps, python_image, resources, secret, };
export * from "./aliases.js";
export declare const emit_json: typeof emitJson;
export declare const to_ir: typeof toIr;
export { webFetch as web_fetch, webSearch as web_search } from "./web.js";
