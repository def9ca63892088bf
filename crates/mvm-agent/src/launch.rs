//! The entrypoints of `/etc/mvm/launch.json`, as written by mvm-compile.
//! Only the fields the agent acts on are read; the rest is for other tools.

use std::path::{Path, PathBuf};

use mvm_proto::{AgentError, ErrorKind};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Launch {
    #[serde(default)]
    pub entrypoints: Vec<Entrypoint>,
    #[serde(default)]
    pub primary_entrypoint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entrypoint {
    Function {
        name: String,
        language: Language,
        module: String,
        function: String,
        working_dir: String,
    },
    Command {
        name: String,
        command: Vec<String>,
        working_dir: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Python,
    Node,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Node => "node",
        }
    }
}

impl Entrypoint {
    pub fn name(&self) -> &str {
        match self {
            Entrypoint::Function { name, .. } | Entrypoint::Command { name, .. } => name,
        }
    }
}

impl Launch {
    /// Read fresh on every use: cheap, and a dev-mode test (or a builder VM)
    /// may install it after the agent started.
    pub fn read(path: &Path) -> Result<Launch, AgentError> {
        let text = std::fs::read(path).map_err(|e| AgentError {
            kind: if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NoSuchEntrypoint
            } else {
                ErrorKind::Io
            },
            message: format!(
                "cannot read {}: {e}; the image has no launch metadata",
                path.display()
            ),
        })?;
        serde_json::from_slice(&text).map_err(|e| AgentError {
            kind: ErrorKind::Io,
            message: format!("{} is not valid launch metadata: {e}", path.display()),
        })
    }

    /// The named entrypoint, or the primary one for `None`.
    pub fn find(&self, name: Option<&str>) -> Result<&Entrypoint, AgentError> {
        let wanted = name.unwrap_or(&self.primary_entrypoint);
        self.entrypoints
            .iter()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = self.entrypoints.iter().map(Entrypoint::name).collect();
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
}

pub fn working_dir(dir: &str) -> PathBuf {
    PathBuf::from(if dir.is_empty() { "/app" } else { dir })
}
