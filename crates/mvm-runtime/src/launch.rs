//! Reading an image's `launch.json` through the contract
//! ([`mvm_launch`]), then refusing what this runtime cannot provide yet.

use std::path::Path;

pub use mvm_launch::{Entrypoint, EnvValue, Launch, NetworkMode, SecretAuth};

use crate::error::RuntimeError;

/// The image's launch contract, validated, or why it cannot be run here.
pub fn load(path: &Path) -> Result<Launch, RuntimeError> {
    load_with_digest(path).map(|(launch, _)| launch)
}

/// [`load`], and the SHA-256 of the very bytes parsed: admission pins
/// launch.json by digest, and hashing the file again by path could see
/// another file than the one that was read.
pub fn load_with_digest(path: &Path) -> Result<(Launch, String), RuntimeError> {
    use sha2::Digest;
    let bad = |detail: String| RuntimeError::BadLaunch {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = read_capped(path).map_err(|e| bad(e.to_string()))?;
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let launch = mvm_launch::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    Ok((launch, digest))
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(mvm_launch::MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn launch() -> serde_json::Value {
        let phases = ["before_build", "before_start", "after_start", "before_stop"];
        serde_json::json!({
            "launch_version": mvm_launch::LAUNCH_VERSION, "workload_id": "hello", "app_name": "hello",
            "ir_hash": "a".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "0.1.0"},
            "image": {"kind": "nix_packages", "packages": ["python3"]},
            "dependencies": {"kind": "none"},
            "resources": {"cpu_cores": 2, "memory_mib": 256, "rootfs_size_mib": 512},
            "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
            "env": {"MODEL": {"kind": "literal", "value": "m"}, "API_KEY": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": null, "hosts": []}},
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
                name: "api-key".into(),
                auth: SecretAuth::Token,
                header: None,
                hosts: vec![],
            }
        );
        assert_eq!(l.primary().map(Entrypoint::name), Some("greet"));
    }

    #[test]
    fn reads_networks_and_refuses_a_host_that_could_not_be_a_name() {
        let mut v = launch();
        v["network"]["mode"] = "bridge".into();
        v["network"]["egress"]["allowlist"] =
            serde_json::json!([{"host": "pypi.org", "port": 443}]);
        let (_d, p) = write(&v);
        assert_eq!(load(&p).unwrap().network.mode, NetworkMode::Bridge);
        v["network"]["egress"]["allowlist"][0]["host"] = "pypi.org\n10.0.0.1 x".into();
        let (_d, p) = write(&v);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("network.egress.allowlist[0].host"), "{err}");
    }

    #[test]
    fn refuses_a_launch_from_another_version_or_out_of_range() {
        let mut v = launch();
        v["launch_version"] = 2.into();
        let (_d, p) = write(&v);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("launch_version: 2 is not 3"), "{err}");

        let mut v = launch();
        v["resources"]["memory_mib"] = 4_000_000.into();
        let (_d, p) = write(&v);
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("resources.memory_mib"), "{err}");
    }
}
