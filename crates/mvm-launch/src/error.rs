use thiserror::Error;

use crate::LAUNCH_VERSION;

/// Why a launch.json was refused. `path` is the JSON path at fault
/// (`resources.memory_mib`, `entrypoints[1].name`); empty for the whole file.
#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("cannot read launch.json: {0}")]
    Io(#[source] std::io::Error),
    #[error("launch_version: {found} is not {LAUNCH_VERSION}, the version this mvm reads")]
    Version { found: String },
    #[error("{}{message}", at(path))]
    Json { path: String, message: String },
    #[error("{}{message}", at(path))]
    Invalid { path: String, message: String },
}

fn at(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl LaunchError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> LaunchError {
        LaunchError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// What a person can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            LaunchError::Io(_) => {
                "check that the path is a compile output or an image built by mvmctl"
            }
            LaunchError::Version { .. } => {
                "it was written by another mvm version: compile the declaration again with this mvmctl, then build"
            }
            LaunchError::Json { .. } | LaunchError::Invalid { .. } => {
                "launch.json is written by `mvmctl compile` and must not be edited; compile again"
            }
        }
    }
}
