//! `/etc/mvm/launch.json`, read through the contract ([`mvm_launch`]) and
//! turned into the agent's errors.

use std::path::Path;
use std::sync::{Arc, Mutex};

use mvm_proto::{AgentError, ErrorKind};

pub use mvm_launch::{Entrypoint, Language, Launch};

/// The parsed file, kept while the file's bytes stay the same. Parsing and
/// validating it took about 1 ms of an invoke's 3 under TCG; reading the
/// few KiB and comparing them is tens of microseconds. A dev-mode test (or
/// a builder VM) may install or replace the file after the agent started,
/// so every use reads it. (Comparing the bytes, not the inode's times:
/// an in-place rewrite within one clock tick keeps the times.)
#[derive(Default)]
pub struct Cache {
    held: Mutex<Option<(Vec<u8>, Arc<Launch>)>>,
}

impl Cache {
    /// The file at `path`, parsed again only when its bytes changed.
    pub fn get(&self, path: &Path) -> Result<Arc<Launch>, AgentError> {
        let bytes = read_bytes(path)?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, launch)) = held.as_ref()
            && *seen == bytes
        {
            return Ok(launch.clone());
        }
        let launch = Arc::new(mvm_launch::parse(&bytes).map_err(|e| error(path, e))?);
        *held = Some((bytes, launch.clone()));
        Ok(launch)
    }
}

/// The file's bytes, refusing one over the contract's limit.
fn read_bytes(path: &Path) -> Result<Vec<u8>, AgentError> {
    use std::io::Read;
    let io = |e: std::io::Error| error(path, mvm_launch::LaunchError::Io(e));
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(mvm_launch::MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// The agent's error for a launch.json that cannot be read or parsed.
fn error(path: &Path, e: mvm_launch::LaunchError) -> AgentError {
    AgentError {
        kind: match &e {
            mvm_launch::LaunchError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NoSuchEntrypoint
            }
            _ => ErrorKind::Io,
        },
        message: match &e {
            mvm_launch::LaunchError::Io(io) => format!(
                "cannot read {}: {io}; the image has no launch metadata",
                path.display()
            ),
            _ => format!("{} is not valid launch metadata: {e}", path.display()),
        },
    }
}

/// The named entrypoint, or the primary one for `None`.
pub fn find<'a>(launch: &'a Launch, name: Option<&str>) -> Result<&'a Entrypoint, AgentError> {
    let wanted = name.unwrap_or(&launch.primary_entrypoint);
    launch.entrypoint(wanted).ok_or_else(|| {
        let known: Vec<&str> = launch.entrypoints.iter().map(Entrypoint::name).collect();
        let message = match name {
            Some(n) => format!(
                "no entrypoint named `{n}`; the image has: {}",
                known.join(", ")
            ),
            None => format!(
                "the image declares no primary entrypoint; it has: {}",
                known.join(", ")
            ),
        };
        AgentError {
            kind: ErrorKind::NoSuchEntrypoint,
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid file whose primary entrypoint is `primary`.
    fn launch_json(primary: &str) -> String {
        let phases = ["before_build", "before_start", "after_start", "before_stop"];
        let function = |name: &str| {
            serde_json::json!({"kind": "function", "name": name, "language": "python",
                "module": "m", "function": name, "working_dir": "/app", "format": "json", "primary": name == primary})
        };
        serde_json::json!({
            "launch_version": mvm_launch::LAUNCH_VERSION,
            "workload_id": "dev", "app_name": "dev",
            "ir_hash": "0".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "test"},
            "image": {"kind": "nix_packages", "packages": []},
            "dependencies": {"kind": "none"},
            "resources": {"cpu_cores": 1, "memory_mib": 256, "rootfs_size_mib": 512},
            "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
            "env": {},
            "entrypoints": [function("one"), function("two")],
            "primary_entrypoint": primary,
            "hooks": phases.iter().map(|p| (p.to_string(), serde_json::json!([]))).collect::<serde_json::Map<_, _>>(),
            "hook_scripts": phases.iter().map(|p| (p.to_string(), serde_json::json!(format!("hooks/{p}.sh")))).collect::<serde_json::Map<_, _>>(),
            "mounts": [], "volumes": [], "threat_tier": "untrusted",
            "source": {"files": 0, "tree_hash": "0".repeat(64)},
        })
        .to_string()
    }

    #[test]
    fn a_replaced_or_rewritten_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("launch.json");
        let cache = Cache::default();
        std::fs::write(&path, launch_json("one")).unwrap();
        let first = cache.get(&path).unwrap();
        assert_eq!(first.primary_entrypoint, "one");
        assert!(
            Arc::ptr_eq(&first, &cache.get(&path).unwrap()),
            "unchanged: kept"
        );

        // Replaced by rename, as an installer does.
        let staged = dir.path().join("staged");
        std::fs::write(&staged, launch_json("two")).unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert_eq!(cache.get(&path).unwrap().primary_entrypoint, "two");

        // Rewritten in place, same length.
        std::fs::write(&path, launch_json("one")).unwrap();
        assert_eq!(cache.get(&path).unwrap().primary_entrypoint, "one");

        // Gone: the error, not the old file.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            cache.get(&path).unwrap_err().kind,
            ErrorKind::NoSuchEntrypoint
        );
    }
}
