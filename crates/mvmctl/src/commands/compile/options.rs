//! What `mvmctl compile` reads from its environment besides the arguments:
//! `MVM_ALLOW_HOST_RUN` (the host-run opt-in) and `SOURCE_DATE_EPOCH`.

use std::time::Duration;

use mvm_compile::CompileOptions;
use mvm_recording::input::{ALLOW_HOST_RUN_ENV, HostRun};

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("SOURCE_DATE_EPOCH must be a whole number of seconds since 1970 up to {max}, got `{0}`", max = mvm_compile::MAX_MTIME)]
    SourceDateEpoch(String),
}

impl OptionsError {
    pub fn hint(&self) -> &'static str {
        match self {
            OptionsError::SourceDateEpoch(_) => {
                "unset it, or set it to e.g. `$(git log -1 --format=%ct)`"
            }
        }
    }
}

/// The host-run policy: `--allow-host-run` or `MVM_ALLOW_HOST_RUN=1`.
pub fn host_run(flag: bool, check: bool, timeout: Duration) -> HostRun {
    // Exactly "1": an opt-in to running code must not be inferred from "0" or "false".
    let env = std::env::var_os(ALLOW_HOST_RUN_ENV).is_some_and(|v| v == "1");
    HostRun {
        allowed: flag || env,
        check,
        timeout,
    }
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org) sets every output mtime.
pub fn compile_options() -> Result<CompileOptions, OptionsError> {
    let mtime = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => match v.trim().parse() {
            Ok(secs) if secs <= mvm_compile::MAX_MTIME => secs,
            _ => return Err(OptionsError::SourceDateEpoch(v)),
        },
        Err(_) => 0,
    };
    Ok(CompileOptions {
        mtime,
        toolchain_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}
