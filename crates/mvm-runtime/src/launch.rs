//! Reading an image's `launch.json` through the contract
//! ([`mvm_launch`]), then refusing what this runtime cannot provide yet.

use std::path::Path;

pub use mvm_launch::{Entrypoint, EnvValue, Launch, NetworkMode};

use crate::error::RuntimeError;

/// The image's launch contract, validated, or why it cannot be run here.
pub fn load(path: &Path) -> Result<Launch, RuntimeError> {
    let bad = |detail: String| RuntimeError::BadLaunch {
        path: path.to_path_buf(),
        detail,
    };
    let launch = mvm_launch::read(path).map_err(|e| bad(e.to_string()))?;
    if launch.network.mode != NetworkMode::None {
        return Err(bad(format!(
            "network mode `{}` is not supported by this runtime yet; only `none` (no network device) is",
            launch.network.mode.as_str()
        )));
    }
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> serde_json::Value {
        let phases = ["before_build", "before_start", "after_start", "before_stop"];
        serde_json::json!({
            "launch_version": mvm_launch::LAUNCH_VERSION, "workload_id": "hello", "app_name": "hello",
            "ir_hash": "a".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "0.1.0"},
            "image": {"kind": "nix_packages", "packages": ["python3"]},
            "dependencies": {"kind": "none"},
            "resources": {"cpu_cores": 2, "memory_mib": 256, "rootfs_size_mib": 512},
            "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
            "env": {"MODEL": {"kind": "literal", "value": "m"}, "API_KEY": {"kind": "secret_ref", "name": "api-key"}},
            "entrypoints": [
                {"kind": "function", "name": "greet", "language": "python", "module": "app",
                 "function": "greet", "format": "json", "working_dir": "/app", "primary": true},
                {"kind": "command", "name": "main", "command": ["sleep", "1"], "working_dir": "/app", "primary": false}
            ],
            "primary_entrypoint": "greet",
            "hooks": phases.iter().map(|p| (p.to_string(), serde_json::json!([]))).collect::<serde_json::Map<_, _>>(),
            "hook_scripts": phases.iter().map(|p| (p.to_string(), serde_json::json!(format!("hooks/{p}.sh")))).collect::<serde_json::Map<_, _>>(),
            "mounts": [], "volumes": [], "threat_tier": "untrusted",
            "source": {"files": 1, "tree_hash": "b".repeat(64)},
        })
    }

    fn write(v: &serde_json::Value) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("launch.json");
        std::fs::write(&p, v.to_string()).unwrap();
        (d, p)
    }

    #[test]
    fn reads_what_the_runtime_needs() {
        let (_d, p) = write(&launch());
        let l = load(&p).unwrap();
        assert_eq!(l.resources.cpu_cores, 2);
        assert_eq!(
            l.env["API_KEY"],
            EnvValue::SecretRef {
                name: "api-key".into()
            }
        );
        assert_eq!(l.primary().map(Entrypoint::name), Some("greet"));
    }

    #[test]
    fn refuses_networks_it_cannot_provide() {
        let mut v = launch();
        v["network"]["mode"] = "bridge".into();
        let (_d, p) = write(&v);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("`bridge` is not supported"), "{err}");
    }

    #[test]
    fn refuses_a_launch_from_another_version_or_out_of_range() {
        let mut v = launch();
        v["launch_version"] = 1.into();
        let (_d, p) = write(&v);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("launch_version: 1 is not 2"), "{err}");

        let mut v = launch();
        v["resources"]["memory_mib"] = 4_000_000.into();
        let (_d, p) = write(&v);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("resources.memory_mib"), "{err}");
    }
}
