//! TypeScript auto-run (seed 003): a `.ts` recording script (no declaration
//! in any form, uses the SDK's `Sandbox`) is executed **on the host** under
//! the resolved runner with `MVM_SDK_MODE=record`, and its recording is read
//! back. Only the caller's explicit opt-in may get here (`mvmctl compile
//! --allow-host-run`), and the caller says what runs first ([`describe`]).
//!
//! The run is confined as far as the host allows without a sandbox: a
//! cleared environment ([`KEPT_ENV`] and the SDK's two variables), no
//! stdin, output captured to a file, its own process group, which is killed
//! when the script exits or when the timeout passes, and for deno only the
//! permissions recording needs (see [`Runner::args_for`]). tsx (node) and
//! bun have no permission model: the script can do what the user can.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::runner::{self, ResolveError, Runner};

/// How long a script may run unless `--host-run-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The variables the SDK reads in record mode; mvmctl sets both.
pub const SDK_ENV: [&str; 2] = ["MVM_SDK_MODE", "MVM_SDK_OUT_PATH"];

/// The only variables of mvmctl's environment the runner sees: enough to
/// find `node` and a home and temporary directory, nothing else (no tokens,
/// no `NODE_OPTIONS`).
pub const KEPT_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"];

/// A recording larger than this is refused rather than read into memory.
const MAX_RECORDING: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AutorunError {
    #[error("{0}\n  hint: {hint}", hint = runner::INSTALL_HINT)]
    NoRunner(#[from] ResolveError),
    #[error("could not start {runner}: {source}", runner = .runner.display())]
    Spawn {
        runner: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the script was still running after {secs} s and was killed (with every process it started)\n  hint: a recording script should only create its sandboxes and exit; raise the limit with --host-run-timeout SECS if it needs longer",
        secs = .timeout.as_secs()
    )]
    Timeout { timeout: Duration },
    #[error("the script failed in record mode ({status}); its output ends with:\n{tail}")]
    Failed { status: ExitStatus, tail: String },
    #[error(
        "the script ran but created no Sandbox, so there is nothing to compile\n  hint: declare the workload with mvm.app({{...}})(fn), or call Sandbox.create(...)"
    )]
    NoRecording,
    #[error("the recording is over {} MiB", MAX_RECORDING >> 20)]
    TooLarge,
    #[error("reading the recording: {0}")]
    Io(#[from] std::io::Error),
}

/// The runner used and the recording text it produced.
#[derive(Debug)]
pub struct Autorun {
    pub runner: Runner,
    pub recording: String,
}

/// The command line that records `script`, quoted, for warnings and
/// refusals: the runner's absolute path and the script's, and what the
/// runner links to when it is a symlink (`node_modules/.bin/tsx`).
pub fn describe(runner: &Runner, script: &Path) -> String {
    let script = std::path::absolute(script).unwrap_or_else(|_| script.to_path_buf());
    let mut line = format!("`{} {}`", runner.path.display(), script.display());
    if let Ok(target) = runner.path.canonicalize()
        && target != runner.path
    {
        line.push_str(&format!(
            " ({} links to {})",
            runner.path.display(),
            target.display()
        ));
    }
    line
}

/// Resolves the runner for `cwd` (see [`runner::resolve`]).
pub fn resolve(cwd: &Path) -> Result<Runner, AutorunError> {
    Ok(runner::resolve(cwd)?)
}

/// Runs `script` under `runner` from `cwd` and returns its recording.
pub fn record_with(
    runner: &Runner,
    script: &Path,
    cwd: &Path,
    timeout: Duration,
) -> Result<Autorun, AutorunError> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("recording.json");
    let log_path = dir.path().join("output.log");
    let log = File::create(&log_path)?;
    let script = std::path::absolute(script)?;
    let mut cmd = Command::new(&runner.path);
    cmd.args(runner.args_for(&script, &out))
        .current_dir(cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own group, so everything it starts can be killed with it.
        .process_group(0);
    for key in KEPT_ENV {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.env(SDK_ENV[0], "record").env(SDK_ENV[1], &out);
    let mut child = cmd.spawn().map_err(|source| AutorunError::Spawn {
        runner: runner.path.clone(),
        source,
    })?;
    // A timeout too large to add to now is no deadline at all.
    let finished = wait_until(&child, Instant::now().checked_add(timeout))?;
    // The leader is still running or a zombie, so its group id cannot have
    // been reused: kill whatever the script left behind, then reap it.
    let _ = rustix::process::kill_process_group(pid_of(&child), rustix::process::Signal::KILL);
    let status = child.wait()?;
    if !finished {
        return Err(AutorunError::Timeout { timeout });
    }
    if !status.success() {
        return Err(AutorunError::Failed {
            status,
            tail: tail(&log_path)?,
        });
    }
    let recording = match File::open(&out) {
        Ok(f) => read_capped(f)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AutorunError::NoRecording);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Autorun {
        runner: runner.clone(),
        recording,
    })
}

fn pid_of(child: &std::process::Child) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid is positive")
}

/// True once the child has exited (left unreaped), false at the deadline.
fn wait_until(child: &std::process::Child, deadline: Option<Instant>) -> std::io::Result<bool> {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    loop {
        if waitid(WaitId::Pid(pid_of(child)), opts)?.is_some() {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_capped(f: File) -> Result<String, AutorunError> {
    let mut text = String::new();
    f.take(MAX_RECORDING + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RECORDING {
        return Err(AutorunError::TooLarge);
    }
    Ok(text)
}

/// The last 20 lines of the script's output (from at most its last 64 KiB),
/// with control characters escaped.
fn tail(log: &Path) -> std::io::Result<String> {
    let mut f = File::open(log)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 << 10)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| mvm_ir::text::escape_control(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n"))
}
