//! Semantic validation of a decoded workload: every finding, errors and
//! warnings, each with the JSON pointer of the value it is about.
//!
//! `E_LOCKFILE_MISSING` is not checked here: it needs the source bundle, so
//! compile raises it. Schema problems are [`crate::decode`]'s job.

mod bindings;
mod fetch;
pub mod host;
mod names;
mod network;
mod paths;
pub mod secrets;

use std::collections::{BTreeMap, BTreeSet};

use crate::codes::{Code, Finding, pointer_segment};
use crate::types::*;

/// Every finding for `w`, sorted by path then code.
pub fn validate(w: &Workload) -> Vec<Finding> {
    let mut v = Validator::default();
    v.workload(w);
    let mut findings = v.findings;
    findings.sort_by(|a, b| (&a.path, a.code).cmp(&(&b.path, b.code)));
    findings
}

/// Whether any finding is an error (compile stops on errors only).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::is_error)
}

fn child(path: &str, segment: impl AsRef<str>) -> String {
    format!("{path}/{}", pointer_segment(segment.as_ref()))
}

#[derive(Default)]
struct Validator {
    findings: Vec<Finding>,
}

impl Validator {
    fn push(
        &mut self,
        code: Code,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.findings.push(Finding::new(code, path, message, hint));
    }

    fn id(&mut self, path: String, what: &str, value: &str) {
        if !names::is_id(value) {
            self.push(
                Code::EIdInvalid,
                path,
                format!("{what} \"{value}\" is not a valid id"),
                "use 1 to 63 characters: a lowercase letter, then lowercase letters, digits or \"-\" (e.g. \"hello-app\")",
            );
        }
    }

    fn workload(&mut self, w: &Workload) {
        self.id("/id".into(), "workload id", &w.id);
        if w.apps.len() != 1 {
            self.push(
                Code::EAppsCount,
                "/apps",
                format!(
                    "the workload has {} apps; IR 0.1 needs exactly one",
                    w.apps.len()
                ),
                "declare exactly one app per workload; split several apps into separate workloads",
            );
        }
        let volumes = self.volumes(&w.volumes);
        for (i, app) in w.apps.iter().enumerate() {
            self.app(&format!("/apps/{i}"), app, &volumes);
        }
    }

    /// Checks the volumes and returns their names, for mounts to refer to.
    fn volumes<'w>(&mut self, volumes: &'w [Volume]) -> BTreeSet<&'w str> {
        let mut seen = BTreeSet::new();
        for (i, vol) in volumes.iter().enumerate() {
            let path = format!("/volumes/{i}");
            self.id(child(&path, "name"), "volume name", &vol.name);
            if !seen.insert(vol.name.as_str()) {
                self.push(
                    Code::EInvalidValue,
                    child(&path, "name"),
                    format!("volume \"{}\" is declared more than once", vol.name),
                    "give each volume a distinct name, or remove the duplicate",
                );
            }
            if vol.size_mb == 0 {
                self.push(
                    Code::EInvalidValue,
                    child(&path, "size_mb"),
                    "volume size is 0 MiB",
                    "give the volume a size of at least 1 MiB",
                );
            }
        }
        seen
    }

    fn app(&mut self, path: &str, app: &App, volumes: &BTreeSet<&str>) {
        self.id(child(path, "name"), "app name", &app.name);
        self.source(&child(path, "source"), &app.source);
        self.image(&child(path, "image"), &app.image);
        self.resources(&child(path, "resources"), &app.resources);
        self.dependencies(&child(path, "dependencies"), &app.dependencies);
        self.network(&child(path, "network"), &app.network, app.threat_tier);
        self.env(&child(path, "env"), &app.env, &app.network);
        self.entrypoints(&child(path, "entrypoints"), &app.entrypoints);
        self.hooks(&child(path, "hooks"), &app.hooks);
        self.addons(&child(path, "addons"), &app.addons);
        self.mounts(&child(path, "mounts"), &app.mounts, volumes);
    }

    fn source(&mut self, path: &str, source: &Source) {
        match source {
            Source::LocalPath {
                path: p,
                include,
                exclude,
            } => {
                if let Some(why) = paths::source_escape(p) {
                    self.push(
                        Code::ESourceEscapes,
                        child(path, "path"),
                        format!("source path \"{p}\" {why}"),
                        "use a path relative to the declaration's directory that stays inside it, e.g. \".\" or \"src\"",
                    );
                }
                for (field, globs) in [("include", include), ("exclude", exclude)] {
                    for (i, glob) in globs.iter().enumerate() {
                        self.glob(&format!("{}/{i}", child(path, field)), glob);
                    }
                }
            }
            Source::OciImage { .. } | Source::NixDerivation { .. } => {
                let kind = if matches!(source, Source::OciImage { .. }) {
                    "oci_image"
                } else {
                    "nix_derivation"
                };
                self.push(
                    Code::ESourceKindUnsupported,
                    child(path, "kind"),
                    format!("source kind \"{kind}\" is reserved and not supported in IR 0.1"),
                    "use {\"kind\": \"local_path\", \"path\": ...} pointing at the app's code",
                );
            }
        }
    }

    fn glob(&mut self, path: &str, glob: &str) {
        let problem = if glob.is_empty() {
            Some("is empty".to_owned())
        } else if let Some(why) = paths::source_escape(glob) {
            Some(why.to_owned())
        } else {
            globset::Glob::new(glob)
                .err()
                .map(|e| format!("does not parse: {}", e.kind()))
        };
        if let Some(why) = problem {
            self.push(
                Code::EInvalidValue,
                path,
                format!("glob \"{glob}\" {why}"),
                "write a glob relative to the source path, e.g. \"**/*.py\" or \"tests/**\"",
            );
        }
    }

    fn image(&mut self, path: &str, image: &Image) {
        match image {
            Image::NixPackages { packages } => {
                for (i, pkg) in packages.iter().enumerate() {
                    if !names::is_nix_package(pkg) {
                        self.push(
                            Code::EInvalidValue,
                            format!("{}/{i}", child(path, "packages")),
                            format!("\"{pkg}\" is not a nix package attribute name"),
                            "use a nixpkgs attribute such as \"python312\" or \"python3Packages.numpy\" (letters, digits, _ . + -)",
                        );
                    }
                }
            }
            Image::OciBase { reference, digest } => {
                if reference.trim().is_empty() {
                    self.push(
                        Code::EInvalidValue,
                        child(path, "reference"),
                        "oci_base reference is empty",
                        "name an image, e.g. \"debian:12-slim\"",
                    );
                }
                match digest {
                    None => self.push(
                        Code::WOciMutable,
                        child(path, "digest"),
                        format!("oci_base \"{reference}\" has no digest; the tag can move and change what gets built"),
                        "pin the image: set digest to \"sha256:<64 hex>\" (see `docker buildx imagetools inspect REF`)",
                    ),
                    Some(d) if !names::is_sha256_digest(d) => self.push(
                        Code::EInvalidValue,
                        child(path, "digest"),
                        format!("digest \"{d}\" is not \"sha256:\" followed by 64 lowercase hex digits"),
                        "copy the full sha256 digest of the image, or set digest to null to build from the tag",
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    fn resources(&mut self, path: &str, r: &Resources) {
        let checks = [
            ("cpu_cores", r.cpu_cores, Resources::CPU_CORES, ""),
            ("memory_mb", r.memory_mb, Resources::MEMORY_MB, " MiB"),
            (
                "rootfs_size_mb",
                r.rootfs_size_mb,
                Resources::ROOTFS_SIZE_MB,
                " MiB",
            ),
        ];
        for (field, value, range, unit) in checks {
            if !range.contains(&value) {
                self.push(
                    Code::EResourcesRange,
                    child(path, field),
                    format!(
                        "{field} {value}{unit} is outside {}..={}",
                        range.start(),
                        range.end()
                    ),
                    format!(
                        "set {field} between {} and {}{unit}",
                        range.start(),
                        range.end()
                    ),
                );
            }
        }
    }

    fn dependencies(&mut self, path: &str, deps: &Dependencies) {
        let lockfile = match deps {
            Dependencies::None => return,
            Dependencies::Python { lockfile, .. } | Dependencies::Node { lockfile, .. } => lockfile,
        };
        if let Some(why) = paths::bundle_path_problem(lockfile) {
            self.push(
                Code::EInvalidValue,
                child(path, "lockfile"),
                format!("lockfile path \"{lockfile}\" {why}"),
                "give the lockfile's path relative to the source path, e.g. \"uv.lock\" or \"package-lock.json\"",
            );
        }
    }

    fn network(&mut self, path: &str, net: &Network, tier: ThreatTier) {
        let closed = net.mode == NetworkMode::None;
        if net.mode == NetworkMode::Host && tier == ThreatTier::Untrusted {
            self.push(
                Code::EHostNetworkUntrusted,
                child(path, "mode"),
                "network mode \"host\" on an untrusted app gives it the host's network",
                "use mode \"bridge\" with an egress allowlist, or mark the app threat_tier \"trusted\" if you trust its code",
            );
        }
        if closed && !net.ports.is_empty() {
            self.push(
                Code::ENetworkEgressClosed,
                child(path, "ports"),
                "ports are forwarded but network mode is \"none\"",
                "set network mode to \"bridge\", or remove the ports",
            );
        }
        if closed && !net.egress.allowlist.is_empty() {
            self.push(
                Code::ENetworkEgressClosed,
                child(&child(path, "egress"), "allowlist"),
                "an egress allowlist is given but network mode is \"none\"",
                "set network mode to \"bridge\", or empty the allowlist",
            );
        }
        if closed && net.dns != Dns::None {
            self.push(
                Code::EDnsWithoutNetwork,
                child(path, "dns"),
                "dns is configured but network mode is \"none\"",
                "set network mode to \"bridge\", or set dns to {\"kind\": \"none\"}",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, port) in net.ports.iter().enumerate() {
            let p = format!("{}/{i}", child(path, "ports"));
            if port.guest == 0 {
                self.push(
                    Code::EInvalidValue,
                    child(&p, "guest"),
                    "guest port 0 is not a port",
                    "use the port the app listens on, 1 to 65535",
                );
            }
            if !seen.insert((port.guest, port.proto)) {
                self.push(
                    Code::EInvalidValue,
                    child(&p, "guest"),
                    format!("guest port {} is forwarded more than once", port.guest),
                    "forward each guest port once per protocol",
                );
            }
        }
        for (i, hp) in net.egress.allowlist.iter().enumerate() {
            let p = format!("{}/{i}", child(&child(path, "egress"), "allowlist"));
            if self.host(&child(&p, "host"), &hp.host, "egress host") {
                self.egress_destination(&child(&p, "host"), hp);
            }
            self.port(&child(&p, "port"), hp.port);
        }
        if let Dns::Resolver { host, port } = &net.dns {
            self.host(&child(&child(path, "dns"), "host"), host, "dns resolver");
            self.port(&child(&child(path, "dns"), "port"), *port);
        }
    }

    /// Reports a host that is not one concrete host; true when it is.
    fn host(&mut self, path: &str, host: &str, what: &str) -> bool {
        let problem = network::host_problem(host);
        let ok = problem.is_none();
        match problem {
            Some(network::HostProblem::Wildcard(why)) => self.push(
                Code::ENetworkWildcard,
                path,
                format!("{what} \"{host}\" {why}"),
                "list each host the app needs by name or address, e.g. \"pypi.org\"; wildcards and ranges are not allowed",
            ),
            Some(network::HostProblem::Invalid(why)) => self.push(
                Code::EInvalidValue,
                path,
                format!("{what} \"{host}\" {why}"),
                "give a DNS name or an IP address, without scheme, port or path",
            ),
            None => {}
        }
        ok
    }

    /// A declaration may not grant what only the operator may open: a
    /// loopback, private, link-local, metadata, ... address in any
    /// spelling, or a name that is always local. Names that merely resolve
    /// to such addresses are the egress gate's to refuse.
    fn egress_destination(&mut self, path: &str, hp: &HostPort) {
        let Some(class) = host::host_class(&hp.host) else {
            return;
        };
        let spelled = match host::parse_ip(&hp.host) {
            Some(ip) if ip.to_string() != hp.host => format!(" (that is {ip})"),
            _ => String::new(),
        };
        self.push(
            Code::EEgressPrivate,
            path,
            format!(
                "egress host \"{}\"{spelled} is {class}; a declaration cannot grant it",
                hp.host
            ),
            format!(
                "remove it from the allowlist; only the operator can open such a destination, by naming it at build/up time (`--allow-private-egress {}:{}`), e.g. for their own local service",
                hp.host, hp.port
            ),
        );
    }

    fn port(&mut self, path: &str, port: u16) {
        if port == 0 {
            self.push(
                Code::EInvalidValue,
                path,
                "port 0 is not a port",
                "use the port the service listens on, 1 to 65535",
            );
        }
    }

    fn env(&mut self, path: &str, env: &BTreeMap<String, EnvValue>, net: &Network) {
        for (key, value) in env {
            let p = child(path, key);
            if !names::is_env_name(key) {
                self.push(
                    Code::EEnvNameInvalid,
                    p.clone(),
                    format!("env name \"{key}\" is not a valid variable name"),
                    "use letters, digits and \"_\", not starting with a digit (e.g. \"MODEL_PATH\")",
                );
            }
            match value {
                EnvValue::SecretRef { name, .. } if !names::is_secret_name(name) => self.push(
                    Code::ESecretNameInvalid,
                    child(&p, "name"),
                    format!("secret name \"{name}\" is not valid"),
                    "use 1 to 128 characters: lowercase letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit (e.g. \"api-key\")",
                ),
                EnvValue::Literal { .. } if names::looks_like_credential(key) => self.push(
                    Code::WSecretLiteral,
                    child(&p, "value"),
                    format!("env \"{key}\" looks like a credential but holds a literal value that is stored in the IR and image"),
                    "pass it as a secret instead: {\"kind\": \"secret_ref\", \"name\": \"...\"} (mvm.secret(...) in declarations)",
                ),
                _ => {}
            }
        }
        self.secret_bindings(path, env, net);
    }

    fn entrypoints(&mut self, path: &str, entrypoints: &[Entrypoint]) {
        let primaries: Vec<usize> = (0..entrypoints.len())
            .filter(|&i| entrypoints[i].is_primary())
            .collect();
        if primaries.is_empty() {
            self.push(
                Code::EPrimaryEntrypoint,
                path,
                if entrypoints.is_empty() {
                    "the app has no entrypoint".to_owned()
                } else {
                    "no entrypoint is primary".to_owned()
                },
                "declare at least one entrypoint and set \"primary\": true on exactly one",
            );
        }
        for &i in primaries.iter().skip(1) {
            self.push(
                Code::EPrimaryEntrypoint,
                format!("{path}/{i}/primary"),
                format!(
                    "entrypoint \"{}\" is primary, but so is \"{}\"",
                    entrypoints[i].name(),
                    entrypoints[primaries[0]].name()
                ),
                "set \"primary\": true on exactly one entrypoint",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, ep) in entrypoints.iter().enumerate() {
            let p = format!("{path}/{i}");
            self.id(child(&p, "name"), "entrypoint name", ep.name());
            if !seen.insert(ep.name()) {
                self.push(
                    Code::EPrimaryEntrypoint,
                    child(&p, "name"),
                    format!("entrypoint name \"{}\" is used more than once", ep.name()),
                    "give each entrypoint a distinct name; `mvmctl invoke --entrypoint NAME` selects by it",
                );
            }
            if let Some(why) = paths::guest_path_problem(ep.working_dir()) {
                self.push(
                    Code::EInvalidValue,
                    child(&p, "working_dir"),
                    format!("working_dir \"{}\" {why}", ep.working_dir()),
                    format!("use an absolute guest path such as \"{DEFAULT_WORKING_DIR}\""),
                );
            }
            match ep {
                Entrypoint::Function {
                    language,
                    module,
                    function,
                    ..
                } => {
                    let dollar = *language == Language::Node;
                    if !names::is_dotted_path(module, dollar) {
                        self.push(
                            Code::EInvalidValue,
                            child(&p, "module"),
                            format!("module \"{module}\" is not a dotted module path"),
                            "name the module as identifiers joined by dots, e.g. \"app\" or \"pkg.handlers\"",
                        );
                    }
                    if !names::is_identifier(function, dollar) {
                        self.push(
                            Code::EInvalidValue,
                            child(&p, "function"),
                            format!("function \"{function}\" is not an identifier"),
                            "give the function's plain name, e.g. \"greet\" (letters, digits, \"_\")",
                        );
                    }
                }
                Entrypoint::Command { command, .. } => {
                    self.argv(&child(&p, "command"), command, "command entrypoint")
                }
            }
        }
    }

    /// `E_EMPTY_COMMAND` for an empty argv or an empty program name.
    fn argv(&mut self, path: &str, argv: &[String], what: &str) {
        match argv.first() {
            None => self.push(
                Code::EEmptyCommand,
                path,
                format!("{what} has an empty argv"),
                "give the program and its arguments, e.g. [\"python3\", \"-m\", \"app\"]",
            ),
            Some(program) if program.trim().is_empty() => self.push(
                Code::EEmptyCommand,
                format!("{path}/0"),
                format!("{what} has an empty program name"),
                "put the program to run first, e.g. [\"python3\", \"-m\", \"app\"]",
            ),
            Some(_) => {}
        }
    }

    fn hooks(&mut self, path: &str, hooks: &Hooks) {
        for phase in HookPhase::ALL {
            for (i, cmd) in hooks.phase(phase).iter().enumerate() {
                let p = format!("{}/{i}", child(path, phase.as_str()));
                self.hook(&p, cmd);
            }
        }
    }

    fn hook(&mut self, path: &str, cmd: &HookCmd) {
        let (field, fetch) = match cmd {
            HookCmd::Shell { line } => {
                if line.trim().is_empty() {
                    self.push(
                        Code::EEmptyCommand,
                        child(path, "line"),
                        "hook shell line is empty",
                        "write the command to run, or remove the hook",
                    );
                }
                ("line", fetch::shell_line(line))
            }
            HookCmd::Argv { argv } => {
                self.argv(&child(path, "argv"), argv, "hook");
                ("argv", fetch::argv(argv))
            }
        };
        if let Some(why) = fetch {
            self.push(
                Code::WHookUnpinnedFetch,
                child(path, field),
                format!("hook fetches code from the network without pinning: {why}"),
                "install from the lockfile (declare dependencies, use `npm ci`), pin versions with == or --require-hashes, or download a file and check its sha256",
            );
        }
    }

    fn addons(&mut self, path: &str, addons: &[AddonUse]) {
        let mut seen = BTreeSet::new();
        for (i, addon) in addons.iter().enumerate() {
            let p = format!("{path}/{i}");
            self.id(child(&p, "name"), "addon name", &addon.name);
            if !seen.insert(addon.name.as_str()) {
                self.push(
                    Code::EInvalidValue,
                    child(&p, "name"),
                    format!("addon \"{}\" is attached more than once", addon.name),
                    "attach each addon once",
                );
            }
            let AddonSource::Local { path: src } = &addon.source;
            if src.trim().is_empty() {
                self.push(
                    Code::EInvalidValue,
                    child(&child(&p, "source"), "path"),
                    "addon source path is empty",
                    "give the directory holding the addon",
                );
            }
            self.hooks(&child(&p, "hooks"), &addon.hooks);
        }
    }

    fn mounts(&mut self, path: &str, mounts: &[Mount], volumes: &BTreeSet<&str>) {
        let mut seen = BTreeSet::new();
        for (i, m) in mounts.iter().enumerate() {
            let p = format!("{path}/{i}");
            if let Some(why) = paths::guest_path_problem(&m.target) {
                self.push(
                    Code::EInvalidValue,
                    child(&p, "target"),
                    format!("mount target \"{}\" {why}", m.target),
                    "mount at an absolute guest path, e.g. \"/data\"",
                );
            } else if !seen.insert(m.target.trim_end_matches('/')) {
                self.push(
                    Code::EInvalidValue,
                    child(&p, "target"),
                    format!("two mounts target \"{}\"", m.target),
                    "mount each target path once",
                );
            }
            let src = child(&p, "source");
            match &m.source {
                MountSource::Tmpfs { size_mb: 0 } => {
                    self.push(
                        Code::EInvalidValue,
                        child(&src, "size_mb"),
                        "tmpfs size is 0 MiB",
                        "give the tmpfs a size of at least 1 MiB",
                    );
                }
                MountSource::Volume { name } if !volumes.contains(name.as_str()) => self.push(
                    Code::EInvalidValue,
                    child(&src, "name"),
                    format!("mount refers to volume \"{name}\", which is not declared"),
                    "declare the volume in the workload's \"volumes\", or fix the name",
                ),
                _ => {}
            }
        }
    }
}
