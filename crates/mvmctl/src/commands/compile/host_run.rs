//! The one place `mvmctl compile` executes a user's file on the host: a
//! TypeScript recording script (no declaration in any form, uses the SDK's
//! `Sandbox`), and only when the user opted in with `--allow-host-run` (or
//! `MVM_ALLOW_HOST_RUN=1`), never under `--check`, and under a timeout.
//! Otherwise it is refused with `E_HOST_RUN_REFUSED`, naming the exact
//! command that would have run.

use std::path::Path;
use std::time::Duration;

use mvm_compile::CompileRequest;
use mvm_ir::{Code, Finding, Location};
use mvm_recording::autorun::{self, KEPT_ENV};

use super::input::{self, InputError};

/// Setting this to `1` has the effect of `--allow-host-run`.
pub const ENV: &str = "MVM_ALLOW_HOST_RUN";

/// What the user allowed for this compile.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// `--allow-host-run` or `MVM_ALLOW_HOST_RUN=1`.
    pub allowed: bool,
    /// `--check`: nothing is ever run.
    pub check: bool,
    pub timeout: Duration,
}

impl HostRun {
    pub fn new(flag: bool, check: bool, timeout: Duration) -> HostRun {
        // Exactly "1": an opt-in to running code must not be inferred from "0" or "false".
        let env = std::env::var_os(ENV).is_some_and(|v| v == "1");
        HostRun {
            allowed: flag || env,
            check,
            timeout,
        }
    }
}

/// Records `path` by running it, if allowed, and lowers the recording.
/// `at` is the script's first use of `Sandbox`.
pub fn record(
    path: &Path,
    at: Location,
    policy: &HostRun,
    recording: &mvm_recording::LowerOptions,
    root_override: Option<&Path>,
) -> Result<CompileRequest, InputError> {
    let cwd = std::env::current_dir().map_err(|source| InputError::Read {
        path: ".".into(),
        source,
    })?;
    let runner = autorun::resolve(&cwd);
    let command = match &runner {
        Ok(r) => autorun::describe(r, path),
        Err(_) => "a TypeScript runner (none is installed: tsx, bun or deno)".to_string(),
    };
    let secs = policy.timeout.as_secs();
    let what = format!(
        "{} has no mvm.app declaration and uses the SDK's Sandbox, so compiling it means running it ON THIS HOST: {command} in record mode, to observe its Sandbox calls",
        path.display()
    );
    let refuse = |message: String, hint: String| {
        InputError::Rejected(vec![
            Finding::new(Code::EHostRunRefused, "", message, hint).at(at.clone()),
        ])
    };
    if policy.check {
        return Err(refuse(
            format!("{what}; --check never runs anything"),
            "drop --check and pass --allow-host-run to record and compile it, if you trust it; or declare the workload statically with mvm.app({...})(fn), which is never run".into(),
        ));
    }
    if !policy.allowed {
        return Err(refuse(
            format!("{what}; refused without --allow-host-run"),
            format!(
                "if you trust this script, pass --allow-host-run (or set {ENV}=1): it then runs with a cleared environment for at most {secs} s (--host-run-timeout); or declare the workload statically with mvm.app({{...}})(fn), which is never run"
            ),
        ));
    }
    let runner = runner.map_err(|source| InputError::Autorun {
        path: path.to_path_buf(),
        source,
    })?;
    eprintln!(
        "warning: {}: --allow-host-run: running {command} ON THIS HOST in record mode, for at most {secs} s, \
         with only {} of this environment (plus MVM_SDK_MODE, MVM_SDK_OUT_PATH){}; a static mvm.app declaration would never run",
        path.display(),
        KEPT_ENV.join(", "),
        if runner.kind == "deno" {
            ", allowed to read the script's directory and write only the recording"
        } else {
            ""
        },
    );
    let run = autorun::record_with(&runner, path, &cwd, policy.timeout).map_err(|source| {
        InputError::Autorun {
            path: path.to_path_buf(),
            source,
        }
    })?;
    eprintln!(
        "recorded {} with {}",
        path.display(),
        run.runner.path.display()
    );
    // The workload is named after the script unless --name says otherwise.
    let mut opts = recording.clone();
    if opts.name.is_none() {
        opts.name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-").to_lowercase());
    }
    input::from_recording(
        &run.recording,
        &opts,
        root_override,
        &input::directory_of(path),
        format!("typescript-recording:{}", path.display()),
    )
}
