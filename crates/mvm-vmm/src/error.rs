//! Why a VM could not be started, in words that hold for any backend.

use std::path::PathBuf;

use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{what} {path} does not exist")]
    MissingInput { what: &'static str, path: PathBuf },
    #[error("opening the VMM log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("restoring a snapshot needs the VM's control socket, but the spec has none")]
    NoControlSocket,
    /// `vmm` names the backend for the person reading (e.g. `QEMU`).
    #[error("restoring the snapshot failed: {source}; {vmm} log tail:\n{log_tail}")]
    Restore {
        vmm: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
        log_tail: String,
    },
    /// The caller's check of the saved state failed; nothing was loaded.
    #[error("{0}")]
    Refused(String),
    /// `hint` says how to get the backend's binary.
    #[error("could not start {binary} ({hint}): {source}")]
    Spawn {
        binary: String,
        hint: &'static str,
        source: std::io::Error,
    },
}
