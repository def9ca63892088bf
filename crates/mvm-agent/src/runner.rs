//! Persistent language runners: one warm interpreter per language, started
//! on the first invoke, so a warm invoke costs a pipe round trip rather
//! than an interpreter start.
//!
//! Runner protocol (see the crate README): the runner reads one JSON
//! request per line on fd 3 and writes one JSON line per answer on fd 4;
//! its stdout and stderr go to the instance log, so user `print`s never
//! touch the channel. First line from the runner: `{"ready": true, ...}`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mvm_proto::{AgentError, ErrorKind, FunctionError, ProcessExit, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::launch::Language;
use crate::layout::Layout;
use crate::{log, process, reaper};

/// How long a runner may take to import itself and say it is ready. Far
/// above a normal start (tens of ms) to allow slow emulated guests.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// What to call: a function entrypoint resolved from launch.json.
pub struct Call<'a> {
    pub language: Language,
    pub module: &'a str,
    pub function: &'a str,
    pub working_dir: &'a Path,
    pub args: Map<String, Value>,
    pub timeout: Option<Duration>,
}

type Slot = Arc<Mutex<Option<Runner>>>;

#[derive(Default)]
pub struct Runners {
    slots: Mutex<HashMap<Language, Slot>>,
}

struct Runner {
    pgid: i32,
    requests: File,
    answers: Receiver<String>,
    exited: Receiver<ProcessExit>,
    next_id: u64,
}

#[derive(Deserialize)]
struct Ready {
    ready: bool,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    id: u64,
    ok: bool,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    error: Option<FunctionError>,
}

impl Runners {
    /// Calls a function in its language's runner, starting the runner if
    /// needed. A runner that dies or times out is discarded and started
    /// afresh on the next call.
    pub fn invoke(
        &self,
        layout: &Layout,
        env: &BTreeMap<String, String>,
        call: Call<'_>,
    ) -> Result<Response, AgentError> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(call.language)
            .or_default()
            .clone();
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(Runner::start(layout, env, call.language)?);
        }
        let runner = guard.as_mut().expect("started above");
        let result = runner.call(&call);
        if result.is_err()
            && let Some(runner) = guard.take()
        {
            runner.stop();
        }
        result
    }

    /// Stops every runner (new environment, or shutdown).
    pub fn stop_all(&self) {
        let slots: Vec<Slot> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            if let Some(runner) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                runner.stop();
            }
        }
    }
}

impl Runner {
    fn start(
        layout: &Layout,
        env: &BTreeMap<String, String>,
        language: Language,
    ) -> Result<Runner, AgentError> {
        let argv = runner_argv(layout, env, language)?;
        let unavailable = |message: String| AgentError {
            kind: ErrorKind::RunnerUnavailable,
            message,
        };
        let (req_read, req_write) =
            pipe().map_err(|e| unavailable(format!("cannot create the runner pipes: {e}")))?;
        let (ans_read, ans_write) =
            pipe().map_err(|e| unavailable(format!("cannot create the runner pipes: {e}")))?;

        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(env)
            .current_dir(layout.app_dir());
        command
            .stdin(Stdio::null())
            .stdout(log::sink())
            .stderr(log::sink());
        reaper::new_session(&mut command);
        let (child_in, child_out) = (req_read.as_raw_fd(), ans_write.as_raw_fd());
        // SAFETY: only fcntl/dup2 between fork and exec. The fds are first
        // duplicated above 10 so that placing them on 3 and 4 cannot
        // clobber one another.
        unsafe {
            command.pre_exec(move || {
                let a = libc::fcntl(child_in, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(child_out, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (child, exited) = reaper::spawn(&mut command).map_err(|e| {
            unavailable(format!(
                "cannot start the {} runner (`{}`): {e}; is it installed in the image?",
                language.as_str(),
                argv[0]
            ))
        })?;
        let pgid = child.id() as i32;
        drop((req_read, ans_write));

        let (tx, answers) = mpsc::channel();
        thread::Builder::new()
            .name(format!("{}-runner", language.as_str()))
            .spawn(move || {
                for line in BufReader::new(File::from(ans_read)).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| unavailable(format!("cannot start the runner reader thread: {e}")))?;
        let mut runner = Runner {
            pgid,
            requests: File::from(req_write),
            answers,
            exited,
            next_id: 1,
        };

        let ready = match runner.answers.recv_timeout(READY_TIMEOUT) {
            Ok(line) => serde_json::from_str::<Ready>(&line)
                .map_err(|e| format!("its first line was not a ready message ({e}): {line}")),
            Err(RecvTimeoutError::Timeout) => {
                Err(format!("it did not become ready within {READY_TIMEOUT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("it {} before becoming ready", runner.death()))
            }
        };
        match ready {
            Ok(Ready { ready: true, .. }) => {
                log!("{} runner ready (pid {pgid})", language.as_str());
                Ok(runner)
            }
            Ok(Ready { error, .. }) => {
                runner.stop();
                Err(unavailable(format!(
                    "the {} runner failed to start: {}",
                    language.as_str(),
                    error.unwrap_or_default()
                )))
            }
            Err(why) => {
                runner.stop();
                Err(unavailable(format!(
                    "the {} runner failed to start: {why}; see the instance log",
                    language.as_str()
                )))
            }
        }
    }

    fn call(&mut self, call: &Call<'_>) -> Result<Response, AgentError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({
            "id": id,
            "module": call.module,
            "function": call.function,
            "working_dir": call.working_dir,
            "args": call.args,
        });
        let mut line = request.to_string();
        line.push('\n');
        let crashed = |runner: &mut Runner, what: &str| AgentError {
            kind: ErrorKind::RunnerCrashed,
            message: format!(
                "the {} runner {} while {what} `{}.{}`; it is restarted on the next invoke (see the instance log)",
                call.language.as_str(),
                runner.death(),
                call.module,
                call.function
            ),
        };
        if self.requests.write_all(line.as_bytes()).is_err() {
            return Err(crashed(self, "receiving the call to"));
        }
        let received = match call.timeout {
            Some(limit) => self.answers.recv_timeout(limit),
            None => self
                .answers
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        let line = match received {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(AgentError {
                    kind: ErrorKind::TimedOut,
                    message: format!(
                        "`{}.{}` ran longer than {:?}; its runner was killed",
                        call.module,
                        call.function,
                        call.timeout.unwrap_or_default()
                    ),
                });
            }
            Err(RecvTimeoutError::Disconnected) => return Err(crashed(self, "running")),
        };
        let answer: Answer = serde_json::from_str(&line).map_err(|e| AgentError {
            kind: ErrorKind::RunnerCrashed,
            message: format!(
                "the {} runner answered something that is not an answer ({e}): {line}",
                call.language.as_str()
            ),
        })?;
        if answer.id != id {
            return Err(AgentError {
                kind: ErrorKind::RunnerCrashed,
                message: format!(
                    "the {} runner answered call {} while call {id} was running",
                    call.language.as_str(),
                    answer.id
                ),
            });
        }
        match (answer.ok, answer.error) {
            (true, _) => Ok(Response::Value {
                value: answer.value,
            }),
            (false, Some(error)) => Ok(Response::FunctionError(error)),
            (false, None) => Ok(Response::FunctionError(FunctionError {
                kind: "RunnerError".into(),
                message: "the runner reported a failure without details".into(),
                traceback: None,
            })),
        }
    }

    /// Describes how the runner ended once its channel closed, killing it
    /// first in case only the channel was closed.
    fn death(&mut self) -> String {
        reaper::kill_group(self.pgid, libc::SIGKILL);
        match self.exited.recv() {
            Ok(exit) => exit.to_string(),
            Err(_) => "ended".into(),
        }
    }

    fn stop(self) {
        reaper::kill_group(self.pgid, libc::SIGKILL);
    }
}

fn runner_argv(
    layout: &Layout,
    env: &BTreeMap<String, String>,
    language: Language,
) -> Result<Vec<String>, AgentError> {
    let (file, program) = match language {
        Language::Python => ("python_runner.py", "python3"),
        Language::Node => ("node_runner.mjs", "node"),
    };
    let script = layout.runner(file);
    if !script.is_file() {
        return Err(AgentError {
            kind: ErrorKind::RunnerUnavailable,
            message: format!(
                "the {} runner is missing at {}; the guest assets are incomplete",
                language.as_str(),
                script.display()
            ),
        });
    }
    let script = script.to_string_lossy().into_owned();
    Ok(match language {
        Language::Python => {
            // -u: user prints reach the instance log as they happen.
            let sdk = layout.python_sdk().to_string_lossy().into_owned();
            vec![program.into(), "-u".into(), script, "--sdk".into(), sdk]
        }
        Language::Node => {
            let mut argv = vec![program.to_string()];
            if node_strips_types(env) {
                argv.push("--experimental-strip-types".into());
                argv.push("--disable-warning=ExperimentalWarning".into());
            }
            argv.push(script);
            argv
        }
    })
}

/// Whether this guest's Node can run TypeScript by stripping types (Node ≥
/// 22.6). Older Node runs only JavaScript; the runner then reports
/// `TypeScriptUnsupported` for a `.ts` module.
fn node_strips_types(env: &BTreeMap<String, String>) -> bool {
    let version = Mutex::new(Vec::new());
    let mut command = process::command(
        &["node".to_string(), "--version".to_string()],
        env,
        Path::new("/"),
    );
    let ran = process::run(
        &mut command,
        &[],
        None,
        &|chunk| version.lock().unwrap().extend(chunk),
        &|_| {},
    );
    if !ran.is_ok_and(|exit| exit.success()) {
        return false;
    }
    let text = String::from_utf8_lossy(&version.into_inner().unwrap_or_default())
        .trim()
        .trim_start_matches('v')
        .to_string();
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (22, 6)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
