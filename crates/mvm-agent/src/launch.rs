//! `/etc/mvm/launch.json`, read through the contract ([`mvm_launch`]) and
//! turned into the agent's errors.

use std::path::Path;

use mvm_proto::{AgentError, ErrorKind};

pub use mvm_launch::{Entrypoint, Language, Launch};

/// Read fresh on every use: cheap, and a dev-mode test (or a builder VM)
/// may install it after the agent started.
pub fn read(path: &Path) -> Result<Launch, AgentError> {
    mvm_launch::read(path).map_err(|e| AgentError {
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
    })
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
