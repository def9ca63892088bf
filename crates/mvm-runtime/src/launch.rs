//! The parts of an image's `launch.json` (written by `mvmctl compile`) that
//! the runtime acts on. Other fields are for the image builder and review,
//! and are ignored here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::RuntimeError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Launch {
    pub resources: Resources,
    pub network: Network,
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    pub entrypoints: Vec<Entrypoint>,
    pub primary_entrypoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Resources {
    pub cpu_cores: u32,
    pub memory_mb: u32,
    pub rootfs_size_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Network {
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvValue {
    Literal { value: String },
    SecretRef { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entrypoint {
    Function { name: String },
    Command { name: String },
}

impl Entrypoint {
    pub fn name(&self) -> &str {
        match self {
            Entrypoint::Function { name } | Entrypoint::Command { name } => name,
        }
    }
}

impl Launch {
    pub fn load(path: &Path) -> Result<Launch, RuntimeError> {
        let bad = |detail: String| RuntimeError::BadLaunch {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let launch: Launch = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if launch.network.mode != "none" {
            return Err(bad(format!(
                "network mode `{}` is not supported by this runtime yet; only `none` (no network device) is",
                launch.network.mode
            )));
        }
        if launch.primary().is_none() {
            return Err(bad(format!(
                "primary entrypoint `{}` is not among the entrypoints",
                launch.primary_entrypoint
            )));
        }
        Ok(launch)
    }

    pub fn primary(&self) -> Option<&Entrypoint> {
        self.entrypoints
            .iter()
            .find(|e| e.name() == self.primary_entrypoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAUNCH: &str = r#"{
        "launch_version": 1, "workload_id": "hello", "app_name": "hello",
        "resources": {"cpu_cores": 2, "memory_mb": 256, "rootfs_size_mb": 512},
        "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
        "env": {"MODEL": {"kind": "literal", "value": "m"}, "API_KEY": {"kind": "secret_ref", "name": "api-key"}},
        "entrypoints": [
            {"kind": "function", "name": "greet", "language": "python", "module": "app",
             "function": "greet", "format": "json", "working_dir": "/app", "primary": true},
            {"kind": "command", "name": "main", "command": ["sleep", "1"], "working_dir": "/app", "primary": false}
        ],
        "primary_entrypoint": "greet"
    }"#;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("launch.json");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn reads_what_the_runtime_needs() {
        let (_d, p) = write(LAUNCH);
        let l = Launch::load(&p).unwrap();
        assert_eq!(l.resources.cpu_cores, 2);
        assert_eq!(
            l.env["API_KEY"],
            EnvValue::SecretRef {
                name: "api-key".into()
            }
        );
        assert_eq!(
            l.primary(),
            Some(&Entrypoint::Function {
                name: "greet".into()
            })
        );
    }

    #[test]
    fn refuses_networks_it_cannot_provide() {
        let (_d, p) = write(&LAUNCH.replace(r#""mode": "none""#, r#""mode": "bridge""#));
        let err = Launch::load(&p).unwrap_err().to_string();
        assert!(err.contains("`bridge` is not supported"), "{err}");
    }
}
