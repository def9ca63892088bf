//! `launch.json`: the IR lowered to the back half's contract
//! ([`mvm_launch::Launch`]), written as canonical JSON. This is the only
//! place the contract is built; the image builder, runtime and agent read
//! it through `mvm_launch::parse` and never see the IR.
//!
//! Secrets appear only as references by name (the IR never holds values).
//! `hooks` holds each phase's merged list (addon hooks first, in attachment
//! order, then the app's). Conversions are functions, not `From` impls:
//! both sides' types are foreign to this crate.

use std::collections::BTreeMap;

use mvm_ir as ir;
use mvm_ir::canonical::canonical_json;
use mvm_launch as l;

use crate::hooks;

pub use mvm_launch::LAUNCH_VERSION;

pub struct Source<'a> {
    pub files: usize,
    pub tree_hash: &'a str,
}

/// The contract for `app` of `workload`.
pub fn launch(
    workload: &ir::Workload,
    app: &ir::App,
    ir_hash: &str,
    toolchain: &str,
    source: &Source<'_>,
) -> l::Launch {
    let mut merged = BTreeMap::new();
    let mut scripts = BTreeMap::new();
    for phase in ir::HookPhase::ALL {
        let p = hook_phase(phase);
        merged.insert(
            p,
            hooks::merged(app, phase)
                .iter()
                .map(|h| hook_cmd(h.cmd))
                .collect(),
        );
        scripts.insert(p, p.script());
    }
    let primary = app
        .entrypoints
        .iter()
        .find(|e| e.is_primary())
        .map(|e| e.name())
        .unwrap_or_default();
    l::Launch {
        launch_version: LAUNCH_VERSION,
        workload_id: workload.id.clone(),
        app_name: app.name.clone(),
        ir_hash: ir_hash.to_string(),
        schema_version: workload.schema_version.clone(),
        toolchain: l::Toolchain {
            mvmctl: toolchain.to_string(),
        },
        image: image(&app.image),
        dependencies: dependencies(&app.dependencies),
        resources: resources(&app.resources),
        network: network(&app.network),
        env: app
            .env
            .iter()
            .map(|(k, v)| (k.clone(), env_value(v)))
            .collect(),
        entrypoints: app.entrypoints.iter().map(entrypoint).collect(),
        primary_entrypoint: primary.to_string(),
        hooks: merged,
        hook_scripts: scripts,
        mounts: app.mounts.iter().map(mount).collect(),
        volumes: workload.volumes.iter().map(volume).collect(),
        threat_tier: match app.threat_tier {
            ir::ThreatTier::Untrusted => l::ThreatTier::Untrusted,
            ir::ThreatTier::Trusted => l::ThreatTier::Trusted,
        },
        source: l::SourceInfo {
            files: source.files as u64,
            tree_hash: source.tree_hash.to_string(),
        },
    }
}

/// [`launch`] as the bytes compile writes.
pub fn launch_json(
    workload: &ir::Workload,
    app: &ir::App,
    ir_hash: &str,
    toolchain: &str,
    source: &Source<'_>,
) -> String {
    canonical_json(&launch(workload, app, ir_hash, toolchain, source).to_value())
}

/// The launch.json compile writes for a `workload.json` read back from a
/// compile output, for readers that must check a launch.json was not
/// edited after compile without interpreting the IR themselves. Refuses a
/// workload that does not decode, does not validate, or has not one app.
pub fn rederive(
    workload_json: &[u8],
    ir_hash: &str,
    toolchain: &str,
    source: &Source<'_>,
) -> Result<String, String> {
    let text =
        std::str::from_utf8(workload_json).map_err(|_| "workload.json: not UTF-8".to_string())?;
    let workload = mvm_ir::decode::from_str(text).map_err(|findings| {
        format!(
            "workload.json: {}",
            findings.first().map(|f| f.to_string()).unwrap_or_default()
        )
    })?;
    if let Some(error) = mvm_ir::validate(&workload)
        .into_iter()
        .find(|f| f.is_error())
    {
        return Err(format!("workload.json: {error}"));
    }
    let [app] = workload.apps.as_slice() else {
        return Err("workload.json: not exactly one app".into());
    };
    Ok(launch_json(&workload, app, ir_hash, toolchain, source))
}

/// Path of a phase's script inside the compile output.
pub fn script_path(phase: ir::HookPhase) -> String {
    hook_phase(phase).script()
}

fn hook_phase(p: ir::HookPhase) -> l::HookPhase {
    match p {
        ir::HookPhase::BeforeBuild => l::HookPhase::BeforeBuild,
        ir::HookPhase::BeforeStart => l::HookPhase::BeforeStart,
        ir::HookPhase::AfterStart => l::HookPhase::AfterStart,
        ir::HookPhase::BeforeStop => l::HookPhase::BeforeStop,
    }
}

fn hook_cmd(c: &ir::HookCmd) -> l::HookCmd {
    match c {
        ir::HookCmd::Shell { line } => l::HookCmd::Shell { line: line.clone() },
        ir::HookCmd::Argv { argv } => l::HookCmd::Argv { argv: argv.clone() },
    }
}

fn image(i: &ir::Image) -> l::Image {
    match i {
        ir::Image::NixPackages { packages } => l::Image::NixPackages {
            packages: packages.clone(),
        },
        ir::Image::OciBase { reference, digest } => l::Image::OciBase {
            reference: reference.clone(),
            digest: digest.clone(),
        },
    }
}

fn dependencies(d: &ir::Dependencies) -> l::Dependencies {
    match d {
        ir::Dependencies::None => l::Dependencies::None,
        ir::Dependencies::Python { lockfile, tool } => l::Dependencies::Python {
            lockfile: lockfile.clone(),
            tool: match tool {
                ir::PythonTool::Uv => l::PythonTool::Uv,
                ir::PythonTool::PipTools => l::PythonTool::PipTools,
            },
        },
        ir::Dependencies::Node { lockfile, tool } => l::Dependencies::Node {
            lockfile: lockfile.clone(),
            tool: match tool {
                ir::NodeTool::Npm => l::NodeTool::Npm,
                ir::NodeTool::Pnpm => l::NodeTool::Pnpm,
                ir::NodeTool::Yarn => l::NodeTool::Yarn,
            },
        },
    }
}

/// The IR's `memory_mb` is MiB; out-of-range values (refused by the IR
/// validator before compile gets here) saturate and are refused again by
/// `Launch::validate` in every reader.
fn resources(r: &ir::Resources) -> l::Resources {
    l::Resources {
        cpu_cores: u32::try_from(r.cpu_cores).unwrap_or(u32::MAX),
        memory_mib: u32::try_from(r.memory_mb).unwrap_or(u32::MAX),
        rootfs_size_mib: r.rootfs_size_mb,
    }
}

fn network(n: &ir::Network) -> l::Network {
    l::Network {
        mode: match n.mode {
            ir::NetworkMode::None => l::NetworkMode::None,
            ir::NetworkMode::Bridge => l::NetworkMode::Bridge,
            ir::NetworkMode::Host => l::NetworkMode::Host,
        },
        ports: n
            .ports
            .iter()
            .map(|p| l::PortForward {
                guest: p.guest,
                host: p.host,
                proto: match p.proto {
                    ir::Proto::Tcp => l::Proto::Tcp,
                    ir::Proto::Udp => l::Proto::Udp,
                },
            })
            .collect(),
        egress: l::Egress {
            allowlist: n
                .egress
                .allowlist
                .iter()
                .map(|h| l::HostPort {
                    host: h.host.clone(),
                    port: h.port,
                })
                .collect(),
        },
        dns: match &n.dns {
            ir::Dns::None => l::Dns::None,
            ir::Dns::System => l::Dns::System,
            ir::Dns::Resolver { host, port } => l::Dns::Resolver {
                host: host.clone(),
                port: *port,
            },
        },
    }
}

fn env_value(v: &ir::EnvValue) -> l::EnvValue {
    match v {
        ir::EnvValue::Literal { value } => l::EnvValue::Literal {
            value: value.clone(),
        },
        ir::EnvValue::SecretRef {
            name,
            auth,
            header,
            hosts,
        } => l::EnvValue::SecretRef {
            name: name.clone(),
            auth: match auth {
                ir::SecretAuth::Token => l::SecretAuth::Token,
                ir::SecretAuth::Bearer => l::SecretAuth::Bearer,
                ir::SecretAuth::Basic => l::SecretAuth::Basic,
                ir::SecretAuth::Header => l::SecretAuth::Header,
            },
            header: header.clone(),
            hosts: hosts.clone(),
        },
    }
}

fn entrypoint(e: &ir::Entrypoint) -> l::Entrypoint {
    match e {
        ir::Entrypoint::Function {
            name,
            language,
            module,
            function,
            format,
            working_dir,
            primary,
        } => l::Entrypoint::Function {
            name: name.clone(),
            language: match language {
                ir::Language::Python => l::Language::Python,
                ir::Language::Node => l::Language::Node,
            },
            module: module.clone(),
            function: function.clone(),
            format: match format {
                ir::Format::Json => l::Format::Json,
            },
            working_dir: working_dir.clone(),
            primary: *primary,
        },
        ir::Entrypoint::Command {
            name,
            command,
            working_dir,
            primary,
        } => l::Entrypoint::Command {
            name: name.clone(),
            command: command.clone(),
            working_dir: working_dir.clone(),
            primary: *primary,
        },
    }
}

fn mount(m: &ir::Mount) -> l::Mount {
    l::Mount {
        target: m.target.clone(),
        source: match &m.source {
            ir::MountSource::Tmpfs { size_mb } => l::MountSource::Tmpfs { size_mib: *size_mb },
            ir::MountSource::Volume { name } => l::MountSource::Volume { name: name.clone() },
        },
        mode: match m.mode {
            ir::MountMode::Ro => l::MountMode::Ro,
            ir::MountMode::Rw => l::MountMode::Rw,
        },
    }
}

fn volume(v: &ir::Volume) -> l::Volume {
    l::Volume {
        name: v.name.clone(),
        size_mib: v.size_mb,
        persist: v.persist,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_ranges_are_the_irs() {
        let (c, m, r) = (
            ir::Resources::CPU_CORES,
            ir::Resources::MEMORY_MB,
            ir::Resources::ROOTFS_SIZE_MB,
        );
        assert_eq!(
            (
                u64::from(*l::Resources::CPU_CORES.start()),
                u64::from(*l::Resources::CPU_CORES.end())
            ),
            (*c.start(), *c.end())
        );
        assert_eq!(
            (
                u64::from(*l::Resources::MEMORY_MIB.start()),
                u64::from(*l::Resources::MEMORY_MIB.end())
            ),
            (*m.start(), *m.end())
        );
        assert_eq!(l::Resources::ROOTFS_SIZE_MIB, r);
    }
}
