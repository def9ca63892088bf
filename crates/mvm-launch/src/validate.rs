//! [`Launch::validate`]: what serde's types cannot say. A launch.json that
//! compile wrote from a valid IR always passes; anything else fails at the
//! first problem, named by its JSON path.

use std::collections::BTreeSet;

use crate::rules::*;
use crate::{
    Dependencies, EnvValue, HookPhase, Launch, LaunchError, MountSource, Resources, SecretAuth,
};

type Check = Result<(), LaunchError>;

fn fail(path: impl Into<String>, message: impl Into<String>) -> Check {
    Err(LaunchError::invalid(path, message))
}

/// Text a person may see in a message: no control characters, short.
fn printable(path: &str, s: &str, max: usize) -> Check {
    if s.len() > max || s.chars().any(char::is_control) {
        return fail(path, format!("not printable text of at most {max} bytes"));
    }
    Ok(())
}

impl Launch {
    pub fn validate(&self) -> Check {
        for (path, value) in [
            ("workload_id", &self.workload_id),
            ("app_name", &self.app_name),
        ] {
            if !is_id(value) {
                printable(path, value, 256)?;
                return fail(
                    path,
                    format!("`{value}` is not a workload name (^[a-z][a-z0-9-]{{0,62}}$)"),
                );
            }
        }
        if !is_sha256_hex(&self.ir_hash) {
            return fail("ir_hash", "not a sha256 hex digest");
        }
        if !is_sha256_hex(&self.source.tree_hash) {
            return fail("source.tree_hash", "not a sha256 hex digest");
        }
        // The network is laid out by the host and the guest alike; a host
        // name that could not be a hosts-file entry is refused here.
        if let Err(e) = crate::net::Layout::of(&self.network) {
            let path = match &e {
                crate::net::LayoutError::BadHost { index, .. } => {
                    format!("network.egress.allowlist[{index}].host")
                }
                crate::net::LayoutError::BadPort { index } => {
                    format!("network.egress.allowlist[{index}].port")
                }
                crate::net::LayoutError::TooManyNames { .. } => "network.egress.allowlist".into(),
                crate::net::LayoutError::RelayPortTaken { index, .. } => {
                    format!("network.ports[{index}].guest")
                }
                crate::net::LayoutError::TooManyUdpPorts { .. } => "network.ports".into(),
                crate::net::LayoutError::BadResolver { .. } => "network.dns".into(),
            };
            return fail(&path, e.to_string());
        }
        printable("schema_version", &self.schema_version, 16)?;
        printable("toolchain.mvmctl", &self.toolchain.mvmctl, 128)?;
        self.resources()?;
        self.dependencies()?;
        self.env()?;
        self.entrypoints()?;
        self.hooks_complete()?;
        self.storage()
    }

    fn resources(&self) -> Check {
        let r = &self.resources;
        let out = |field: &str, value: String, range: String| {
            fail(
                format!("resources.{field}"),
                format!("{value} is outside {range}"),
            )
        };
        if !Resources::CPU_CORES.contains(&r.cpu_cores) {
            return out(
                "cpu_cores",
                r.cpu_cores.to_string(),
                format!("{:?}", Resources::CPU_CORES),
            );
        }
        if !Resources::MEMORY_MIB.contains(&r.memory_mib) {
            return out(
                "memory_mib",
                r.memory_mib.to_string(),
                format!("{:?}", Resources::MEMORY_MIB),
            );
        }
        if !Resources::ROOTFS_SIZE_MIB.contains(&r.rootfs_size_mib) {
            return out(
                "rootfs_size_mib",
                r.rootfs_size_mib.to_string(),
                format!("{:?}", Resources::ROOTFS_SIZE_MIB),
            );
        }
        Ok(())
    }

    fn dependencies(&self) -> Check {
        if let Dependencies::Python { lockfile, .. } | Dependencies::Node { lockfile, .. } =
            &self.dependencies
            && let Some(why) = bundle_path_problem(lockfile)
        {
            return fail("dependencies.lockfile", format!("the path {why}"));
        }
        Ok(())
    }

    fn env(&self) -> Check {
        for (key, value) in &self.env {
            if !is_env_name(key) {
                printable("env", key, 256)?;
                return fail(format!("env.{key}"), "not an environment variable name");
            }
            if let EnvValue::SecretRef {
                name,
                auth,
                header,
                hosts,
            } = value
            {
                if !is_secret_name(name) {
                    return fail(format!("env.{key}.name"), "not a secret name");
                }
                match (auth, header) {
                    (SecretAuth::Header, Some(h)) if is_header_name(h) => {}
                    (SecretAuth::Header, _) => {
                        return fail(format!("env.{key}.header"), "not a header name");
                    }
                    (_, Some(_)) => {
                        return fail(format!("env.{key}.header"), "only for type \"header\"");
                    }
                    (_, None) => {}
                }
                for (i, host) in hosts.iter().enumerate() {
                    if !is_host_name(host) {
                        return fail(format!("env.{key}.hosts[{i}]"), "not a host name");
                    }
                }
            }
        }
        Ok(())
    }

    fn entrypoints(&self) -> Check {
        let mut seen = BTreeSet::new();
        let mut primaries = 0;
        for (i, ep) in self.entrypoints.iter().enumerate() {
            let path = format!("entrypoints[{i}]");
            if !is_id(ep.name()) {
                return fail(
                    format!("{path}.name"),
                    "not an entrypoint name (^[a-z][a-z0-9-]{0,62}$)",
                );
            }
            if !seen.insert(ep.name()) {
                return fail(
                    format!("{path}.name"),
                    format!("`{}` is used twice", ep.name()),
                );
            }
            if let Some(why) = guest_path_problem(ep.working_dir()) {
                return fail(format!("{path}.working_dir"), format!("the path {why}"));
            }
            primaries += usize::from(ep.is_primary());
        }
        match self.primary() {
            Some(ep) if ep.is_primary() && primaries == 1 => Ok(()),
            _ => fail(
                "primary_entrypoint",
                format!(
                    "`{}` is not the one entrypoint marked primary",
                    self.primary_entrypoint.escape_debug()
                ),
            ),
        }
    }

    fn hooks_complete(&self) -> Check {
        for phase in HookPhase::ALL {
            match self.hook_scripts.get(&phase) {
                Some(path) if *path == phase.script() => {}
                Some(path) => {
                    return fail(
                        format!("hook_scripts.{}", phase.as_str()),
                        format!(
                            "`{}` is not `{}`; hook scripts are only read from there",
                            path.escape_debug(),
                            phase.script()
                        ),
                    );
                }
                None => return fail(format!("hook_scripts.{}", phase.as_str()), "missing"),
            }
            if !self.hooks.contains_key(&phase) {
                return fail(format!("hooks.{}", phase.as_str()), "missing");
            }
        }
        Ok(())
    }

    fn storage(&self) -> Check {
        let mut volumes = BTreeSet::new();
        for (i, v) in self.volumes.iter().enumerate() {
            if !is_id(&v.name) || !volumes.insert(v.name.as_str()) {
                return fail(format!("volumes[{i}].name"), "not a distinct volume name");
            }
            if v.size_mib == 0 {
                return fail(format!("volumes[{i}].size_mib"), "0 MiB");
            }
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if let Some(why) = guest_path_problem(&m.target) {
                return fail(format!("mounts[{i}].target"), format!("the path {why}"));
            }
            match &m.source {
                MountSource::Tmpfs { size_mib: 0 } => {
                    return fail(format!("mounts[{i}].source.size_mib"), "0 MiB");
                }
                MountSource::Volume { name } if !volumes.contains(name.as_str()) => {
                    return fail(format!("mounts[{i}].source.name"), "names no volume");
                }
                _ => {}
            }
        }
        Ok(())
    }
}
