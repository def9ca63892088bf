//! Running a child to completion in its own process group while its output
//! streams back chunk by chunk. Shared by `Exec` and hooks.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::Duration;

use mvm_proto::ProcessExit;

use crate::reaper;

/// Read size for output pipes: large enough that bulk output costs few
/// frames, small enough that a chunk shows up while the command still runs.
const CHUNK_BYTES: usize = 64 * 1024;

/// The environment every child starts from, before the configured and
/// per-request variables; the agent's own environment (the kernel's, in
/// the VM) is not passed on.
pub fn base_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("HOME".to_string(), "/root".to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
    ])
}

/// Puts the workload's installed dependencies first on `PATH`: the uv
/// virtual environment (`.venv`, which also makes `python3` its
/// interpreter, so imports find its packages) and `node_modules/.bin`.
pub fn add_project_envs(env: &mut BTreeMap<String, String>, app: &Path) {
    let venv = app.join(".venv");
    let mut first = Vec::new();
    if venv.join("bin").is_dir() {
        first.push(venv.join("bin"));
        env.insert("VIRTUAL_ENV".into(), venv.to_string_lossy().into_owned());
    }
    let node_bin = app.join("node_modules/.bin");
    if node_bin.is_dir() {
        first.push(node_bin);
    }
    if first.is_empty() {
        return;
    }
    let mut path: Vec<String> = first
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    path.extend(env.get("PATH").cloned());
    env.insert("PATH".into(), path.join(":"));
}

/// Prepares `argv` with a clean environment, `cwd`, its own session, and
/// piped standard streams.
pub fn command(argv: &[String], env: &BTreeMap<String, String>, cwd: &Path) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(cwd);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    reaper::new_session(&mut command);
    command
}

/// Runs the command, feeding `stdin` and calling `on_stdout`/`on_stderr`
/// as output arrives. On `timeout` the whole process group is killed. When
/// the command itself exits, whatever it left running in its group is
/// killed too, so an exec never leaves processes behind or keeps its output
/// open forever.
pub fn run(
    command: &mut Command,
    stdin: &[u8],
    timeout: Option<Duration>,
    on_stdout: &(dyn Fn(Vec<u8>) + Sync),
    on_stderr: &(dyn Fn(Vec<u8>) + Sync),
) -> io::Result<ProcessExit> {
    let (mut child, exited) = reaper::spawn(command)?;
    let pgid = child.id() as i32;
    let mut input = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(pipe) = input.as_mut() {
                // The command may exit without reading its input.
                let _ = pipe.write_all(stdin);
            }
            drop(input);
        });
        if let Some(pipe) = stdout {
            scope.spawn(move || pump(pipe, on_stdout));
        }
        if let Some(pipe) = stderr {
            scope.spawn(move || pump(pipe, on_stderr));
        }
        let exit = match timeout {
            None => exited.recv().ok(),
            Some(limit) => match exited.recv_timeout(limit) {
                Ok(exit) => Some(exit),
                Err(RecvTimeoutError::Timeout) => {
                    reaper::kill_group(pgid, libc::SIGKILL);
                    exited.recv().ok().map(|e| ProcessExit {
                        timed_out: true,
                        ..e
                    })
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        reaper::kill_group(pgid, libc::SIGKILL);
        exit.ok_or_else(|| io::Error::other("the child's exit status was lost"))
    })
}

fn pump(mut pipe: impl Read, emit: &(dyn Fn(Vec<u8>) + Sync)) {
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => emit(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_dependencies_come_first_on_path() {
        let app = tempfile::tempdir().unwrap();
        let mut env = base_env();
        add_project_envs(&mut env, app.path());
        assert_eq!(env, base_env(), "nothing installed, nothing changes");

        std::fs::create_dir_all(app.path().join(".venv/bin")).unwrap();
        std::fs::create_dir_all(app.path().join("node_modules/.bin")).unwrap();
        add_project_envs(&mut env, app.path());
        let a = app.path().display();
        assert_eq!(
            env["PATH"],
            format!("{a}/.venv/bin:{a}/node_modules/.bin:{}", base_env()["PATH"])
        );
        assert_eq!(env["VIRTUAL_ENV"], format!("{a}/.venv"));
    }
}
