//! `RunHook`: runs the generated `/etc/mvm/hooks/<phase>.sh` with `/bin/sh`
//! and the agent's environment, in the app directory. `before_start` is
//! sourced by a wrapper instead, so what it exports can be carried on
//! (see [`crate::hook_env`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::sync::Mutex;
use std::time::Duration;

use mvm_proto::{AgentError, ErrorKind, HookOutcome, HookPhase, Response};

use crate::hook_env::{self, Exports};
use crate::layout::Layout;
use crate::process;

/// How much of a hook's combined output is returned: enough to show why it
/// failed; the whole output is in the instance log.
const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

/// Runs any phase but `before_start` as `/bin/sh <script>`.
pub fn run(
    layout: &Layout,
    env: &BTreeMap<String, String>,
    phase: HookPhase,
    timeout: Option<Duration>,
) -> Result<Response, AgentError> {
    let script = layout.hook_script(phase).to_string_lossy().into_owned();
    let argv = vec!["/bin/sh".to_string(), script];
    let outcome = run_script(layout, env, phase, argv, None, timeout)?;
    Ok(Response::HookResult(outcome))
}

/// Runs `before_start` and returns, with its outcome, what it exported:
/// nothing unless it succeeded. `env` is what the script starts from and
/// `configured` the host's part of it, which the script cannot change.
pub fn run_before_start(
    layout: &Layout,
    env: &BTreeMap<String, String>,
    configured: &BTreeMap<String, String>,
    timeout: Option<Duration>,
) -> Result<(Response, Exports), AgentError> {
    let phase = HookPhase::BeforeStart;
    let script = layout.hook_script(phase).to_string_lossy().into_owned();
    let io_error = |message: String| AgentError {
        kind: ErrorKind::Io,
        message,
    };
    let mut listing = hook_env::listing_file().map_err(|e| {
        io_error(format!(
            "cannot create the file for the environment before_start exports: {e}"
        ))
    })?;
    let env_program = hook_env::env_program(&process::base_env()["PATH"]);
    let argv = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        hook_env::wrapper(&env_program),
        script,
    ];
    let mut outcome = run_script(layout, env, phase, argv, Some(&listing), timeout)?;
    if !outcome.success() || outcome.exit.is_none() {
        return Ok((Response::HookResult(outcome), Exports::default()));
    }
    let Some(raw) = hook_env::read_listing(&mut listing).map_err(io_error)? else {
        crate::log!("{phase}: the script ended with `exit`; it exported nothing");
        return Ok((Response::HookResult(outcome), Exports::default()));
    };
    let exports = hook_env::exports(&raw, env, configured).map_err(|message| AgentError {
        kind: ErrorKind::TooLarge,
        message,
    })?;
    for note in &exports.notes {
        crate::log!("{phase}: {note}");
        outcome
            .output_tail
            .push_str(&format!("mvm-agent: {phase}: {note}\n"));
    }
    if !exports.vars.is_empty() {
        let names: Vec<&str> = exports.vars.keys().map(String::as_str).collect();
        crate::log!("{phase} exported {}", names.join(", "));
    }
    Ok((Response::HookResult(outcome), exports))
}

/// Whether `script` holds anything but the compiler's prologue (`#!`,
/// comments, `set -eu`) and blank lines. Unreadable counts as yes: the
/// shell then reports why.
fn has_commands(script: &std::path::Path) -> bool {
    use std::io::Read;
    let mut text = String::new();
    let read = File::open(script).and_then(|f| f.take(1 << 20).read_to_string(&mut text));
    if read.is_err() {
        return true;
    }
    text.lines()
        .map(str::trim)
        .any(|line| !(line.is_empty() || line.starts_with('#') || line == "set -eu"))
}

/// Runs `argv` for the phase's script, if there is one; `capture` is put
/// on the child's fd 3.
fn run_script(
    layout: &Layout,
    env: &BTreeMap<String, String>,
    phase: HookPhase,
    argv: Vec<String>,
    capture: Option<&File>,
    timeout: Option<Duration>,
) -> Result<HookOutcome, AgentError> {
    let script = layout.hook_script(phase);
    // A script with nothing to run (the compiler writes one for every
    // phase) has the outcome of not running it; starting a shell for it
    // costs tens of ms, and far more in a guest just restored under TCG.
    if !script.exists() || !has_commands(&script) {
        return Ok(HookOutcome {
            exit: None,
            output_tail: String::new(),
        });
    }
    let mut command = process::command(&argv, env, &layout.app_dir());
    if let Some(file) = capture {
        let fd = file.as_raw_fd();
        // SAFETY: only fcntl/dup2 between fork and exec. The copy above 10
        // keeps dup2 from being a no-op (leaving close-on-exec set) when
        // the file already is fd 3.
        unsafe {
            command.pre_exec(move || {
                let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                if copy < 0 || libc::dup2(copy, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let output = Mutex::new(Vec::new());
    let collect = |chunk: Vec<u8>| {
        let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
        out.extend_from_slice(&chunk);
        // Keep only the tail while collecting, so a chatty hook costs
        // bounded memory.
        if out.len() > 2 * OUTPUT_TAIL_BYTES {
            let cut = out.len() - OUTPUT_TAIL_BYTES;
            out.drain(..cut);
        }
        for line in String::from_utf8_lossy(&chunk).lines() {
            crate::log!("{phase}: {line}");
        }
    };
    let exit =
        process::run(&mut command, &[], timeout, &collect, &collect).map_err(|e| AgentError {
            kind: ErrorKind::SpawnFailed,
            message: format!("cannot run the {phase} hook {}: {e}", script.display()),
        })?;
    let output = output.into_inner().unwrap_or_else(|p| p.into_inner());
    let tail = &output[output.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
    Ok(HookOutcome {
        exit: Some(exit),
        output_tail: String::from_utf8_lossy(tail).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_compilers_prologue_is_nothing_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let script = |text: &str| {
            let p = dir.path().join("hook.sh");
            std::fs::write(&p, text).unwrap();
            super::has_commands(&p)
        };
        assert!(!script(
            "#!/bin/sh\n# mvm before_start hooks, generated\nset -eu\n# no before_start hooks declared\n"
        ));
        assert!(!script(""));
        assert!(script("#!/bin/sh\nset -eu\nexport A=1\n"));
        assert!(script("#!/bin/sh\n  exit 3\n"));
        assert!(super::has_commands(&dir.path().join("missing.sh")));
    }
}
