//! TypeScript auto-run (seed 003): a `.ts` script without an `mvm.app`
//! declaration but with `Sandbox` calls is executed **on the host** under
//! the resolved runner with `MVM_SDK_MODE=record`, and its recording is
//! read back. The caller must warn the user that this runs their script.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::runner::{self, ResolveError, Runner};

/// Printed by `mvmctl compile` before it runs a script on the host.
pub const HOST_EXECUTION_WARNING: &str = "this script has no mvm.app declaration, so mvmctl compile runs it ON THIS HOST \
in record mode to observe its Sandbox calls; only compile scripts you trust this way (a static mvm.app declaration never runs)";

#[derive(Debug, thiserror::Error)]
pub enum AutorunError {
    #[error("{0}\n  hint: {hint}", hint = runner::INSTALL_HINT)]
    NoRunner(#[from] ResolveError),
    #[error("could not start {runner}: {source}")]
    Spawn {
        runner: PathBuf,
        source: std::io::Error,
    },
    #[error("the script failed in record mode ({status}); its output ends with:\n{tail}")]
    Failed {
        status: std::process::ExitStatus,
        tail: String,
    },
    #[error(
        "the script ran but created no Sandbox, so there is nothing to compile\n  hint: declare the workload with mvm.app({{...}})(fn), or call Sandbox.create(...)"
    )]
    NoRecording,
    #[error("reading the recording: {0}")]
    Io(#[from] std::io::Error),
}

/// The runner used and the recording text it produced.
#[derive(Debug)]
pub struct Autorun {
    pub runner: Runner,
    pub recording: String,
}

/// Runs `script` under the runner resolved from `cwd` and returns its recording.
pub fn record(script: &Path, cwd: &Path) -> Result<Autorun, AutorunError> {
    let runner = runner::resolve(cwd)?;
    record_with(&runner, script, cwd)
}

pub fn record_with(runner: &Runner, script: &Path, cwd: &Path) -> Result<Autorun, AutorunError> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("recording.json");
    let script = std::path::absolute(script)?;
    let output = Command::new(&runner.path)
        .args(runner.args_for(&script))
        .current_dir(cwd)
        .env("MVM_SDK_MODE", "record")
        .env("MVM_SDK_OUT_PATH", &out)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| AutorunError::Spawn {
            runner: runner.path.clone(),
            source,
        })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(AutorunError::Failed {
            status: output.status,
            tail,
        });
    }
    match std::fs::read_to_string(&out) {
        Ok(recording) => Ok(Autorun {
            runner: runner.clone(),
            recording,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AutorunError::NoRecording),
        Err(e) => Err(e.into()),
    }
}
