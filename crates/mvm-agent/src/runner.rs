//! Persistent language runners: one warm interpreter per language, started
//! on the first invoke, so a warm invoke costs a pipe round trip rather
//! than an interpreter start.
//!
//! Runner protocol (see the crate README): the runner reads one JSON
//! request per line on fd 3 and writes one JSON line per answer on fd 4;
//! its stdout and stderr go to the instance log, so user `print`s never
//! touch the channel. First line from the runner: `{"ready": true, ...}`.
//! Besides calls (which carry an `id`), the agent sends the Python runner
//! control lines, answered in order and one at a time like calls:
//! `{"env": {...}}` → `{"env_ok": true}` (replace `os.environ`) and
//! `{"reseed": true}` → `{"reseed_ok": true}` (after a snapshot restore).
//!
//! A runner may be started before any call (`Prewarm`), so a snapshot
//! holds a warm interpreter that has imported no user code. While it has
//! served no call it takes a new environment in place instead of being
//! restarted, so `Configure` after a restore keeps it warm.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use mvm_proto::{AgentError, ErrorKind, FunctionError, ProcessExit, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::launch::Language;
use crate::layout::Layout;
use crate::{log, process, reaper};

/// How long a runner may take to import itself and say it is ready. Far
/// above a normal start (tens of ms) to allow slow emulated guests.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a runner may take to answer a control line. It is idle when
/// one is sent (no call runs under the slot lock), so this only catches a
/// broken runner.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Counts `Resume`s. A runner whose `seeded` lags behind reseeds before
    /// its next call: one busy with a call during `Resume` is not waited
    /// for, so a fork never hangs on a long-running function.
    resumes: AtomicU64,
}

struct Runner {
    language: Language,
    pgid: i32,
    requests: File,
    answers: Answers,
    exited: Receiver<ProcessExit>,
    next_id: u64,
    /// Set once a call was sent: user modules may be imported and may have
    /// read the environment, so a new one needs a new process.
    served: bool,
    /// The environment the process holds, to tell what a new one changes.
    env: BTreeMap<String, String>,
    /// The `Runners::resumes` its random state is fresh for.
    seeded: u64,
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
        let slot = self.slot(call.language);
        let mut guard = lock(&slot);
        let resumes = self.resumes.load(Ordering::SeqCst);
        if let Some(runner) = guard.as_mut()
            && runner.seeded != resumes
        {
            // It was busy when the VM was resumed; reseed before user code
            // draws random numbers again, or start a fresh process.
            match runner.reseed() {
                Ok(()) => runner.seeded = resumes,
                Err(why) => discard(&mut guard, &why),
            }
        }
        if guard.is_none() {
            *guard = Some(Runner::start(layout, env, call.language, resumes)?);
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

    /// Starts `language`'s runner now if it is not running, importing no
    /// user code, so a snapshot taken next holds a warm interpreter.
    ///
    /// Only Python is prewarmed. V8's `Math.random` and OpenSSL's DRBG are
    /// seeded in user space when Node starts and cannot be reseeded from
    /// JavaScript, so a Node process cloned by a snapshot would hand the
    /// same "random" values to every restored copy. Python's `random` is
    /// reseeded on `Resume` (see [`Runners::resumed`]); `os.urandom` and
    /// `secrets` read the kernel, which `Resume` reseeds.
    ///
    /// The Python runner also imports the SDK mvm ships (platform code)
    /// unless one of `working_dirs` or the image has its own module of
    /// that name: the user's `import mvm` after a restore is then a lookup.
    pub fn prewarm(
        &self,
        layout: &Layout,
        env: &BTreeMap<String, String>,
        language: Language,
        working_dirs: &[&str],
    ) -> Result<(), AgentError> {
        if language != Language::Python {
            return Ok(());
        }
        let slot = self.slot(language);
        let mut guard = lock(&slot);
        if guard.is_none() {
            let resumes = self.resumes.load(Ordering::SeqCst);
            *guard = Some(Runner::start(layout, env, language, resumes)?);
            log!("{} runner prewarmed", language.as_str());
            let preload =
                json!({ "preload": { "modules": ["mvm"], "working_dirs": working_dirs } });
            let runner = guard.as_mut().expect("started above");
            if let Err(why) = runner.control(&preload, "preload_ok") {
                // Warm but without the SDK: still a valid prewarm.
                discard(&mut guard, &why);
                *guard = Some(Runner::start(layout, env, language, resumes)?);
            }
        }
        Ok(())
    }

    /// Gives every runner a new environment (after `Configure`, or when
    /// `before_start` exported something else). A Python runner that has
    /// served no call takes it in place, unless a variable the interpreter
    /// reads only at start changed (see [`start_up_change`]); any other
    /// runner is stopped and started afresh with it on the next invoke.
    pub fn set_env(&self, env: &BTreeMap<String, String>) {
        for slot in self.all_slots() {
            let mut guard = lock(&slot);
            let Some(runner) = guard.as_mut() else {
                continue;
            };
            if runner.env == *env {
                continue;
            }
            match runner.take_env(env) {
                Ok(()) => log!(
                    "{} runner took the new environment in place",
                    runner.language.as_str()
                ),
                Err(why) => discard(&mut guard, &why),
            }
        }
    }

    /// After `Resume` (the kernel CRNG was just reseeded): every idle
    /// runner reseeds its user-space random state now; one busy with a
    /// call does so before its next call. A runner that fails is stopped.
    ///
    /// Node runners cannot be reseeded (see [`Runners::prewarm`]): they
    /// are stopped, and the next invoke starts a fresh one (a fork of a
    /// live instance loses its Node module state, never its randomness).
    pub fn resumed(&self) {
        let resumes = self.resumes.fetch_add(1, Ordering::SeqCst) + 1;
        for slot in self.all_slots() {
            let mut guard = match slot.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                // Running a call: `invoke` reseeds it before the next one.
                Err(TryLockError::WouldBlock) => continue,
            };
            let Some(runner) = guard.as_mut() else {
                continue;
            };
            match runner.reseed() {
                Ok(()) => runner.seeded = resumes,
                Err(why) => discard(&mut guard, &why),
            }
        }
    }

    /// Stops every runner (shutdown).
    pub fn stop_all(&self) {
        for slot in self.all_slots() {
            if let Some(runner) = lock(&slot).take() {
                runner.stop();
            }
        }
    }

    fn slot(&self, language: Language) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(language)
            .or_default()
            .clone()
    }

    fn all_slots(&self) -> Vec<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Runner>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the slot's runner, saying why; the next invoke starts a new one.
fn discard(guard: &mut Option<Runner>, why: &str) {
    if let Some(runner) = guard.take() {
        log!(
            "stopping the {} runner (pid {}): {why}; the next invoke starts a new one",
            runner.language.as_str(),
            runner.pgid
        );
        runner.stop();
    }
}

/// Why a runner holding `old` cannot take `new` in place: a variable that
/// only takes effect when the interpreter starts differs. `PYTHON*`
/// (PYTHONPATH, PYTHONHASHSEED, ...), the locale (`LANG`, `LC_*`: Python
/// fixes its encodings at start), the dynamic loader's `LD_*`, and a
/// `PATH` on which `python3` resolves to another interpreter (it decides
/// which one runs, and with it the virtual environment).
fn start_up_change(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Option<String> {
    let read_at_start = |name: &str| {
        name.starts_with("PYTHON")
            || name == "LANG"
            || name.starts_with("LC_")
            || name.starts_with("LD_")
    };
    if let Some(name) = old
        .keys()
        .chain(new.keys())
        .find(|name| read_at_start(name) && old.get(*name) != new.get(*name))
    {
        return Some(format!(
            "`{name}` changed, which Python reads only at start"
        ));
    }
    let (was, now) = (which("python3", old), which("python3", new));
    (was != now).then(|| {
        let shown = |p: Option<PathBuf>| p.map_or("nothing".into(), |p| p.display().to_string());
        format!(
            "`PATH` now selects {} instead of {} as python3",
            shown(now),
            shown(was)
        )
    })
}

/// Where `program` resolves on the environment's `PATH`, as the runner's
/// spawn looks it up.
fn which(program: &str, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    env.get("PATH")?
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|path| {
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Runner {
    /// `resumes`: the [`Runners::resumes`] read before the start, so a
    /// `Resume` racing with it still gets this runner reseeded.
    fn start(
        layout: &Layout,
        env: &BTreeMap<String, String>,
        language: Language,
        resumes: u64,
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

        let answers = Answers::new(File::from(ans_read));
        let mut runner = Runner {
            language,
            pgid,
            requests: File::from(req_write),
            answers,
            exited,
            next_id: 1,
            served: false,
            env: env.clone(),
            seeded: resumes,
        };

        let ready = match runner.answers.recv_timeout(Some(READY_TIMEOUT)) {
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
        self.served = true;
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
            Some(limit) => self.answers.recv_timeout(Some(limit)),
            None => self.answers.recv_timeout(None),
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

    /// Hands a runner that has served no call a new environment in place;
    /// the reason it cannot be is the error.
    fn take_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), String> {
        if self.served {
            return Err("it has served calls, so user code may hold the old environment".into());
        }
        if self.language != Language::Python {
            return Err("only the Python runner takes a new environment in place".into());
        }
        if let Some(change) = start_up_change(&self.env, env) {
            return Err(change);
        }
        self.control(&json!({ "env": env }), "env_ok")?;
        self.env = env.clone();
        Ok(())
    }

    /// Reseeds the runner's user-space random state from the kernel (just
    /// reseeded by `Resume`). Node cannot be; see [`Runners::resumed`].
    fn reseed(&mut self) -> Result<(), String> {
        match self.language {
            Language::Python => self.control(&json!({ "reseed": true }), "reseed_ok"),
            // Its generators cannot be reseeded from outside: a fresh
            // process (started on the next invoke) is the only way no two
            // restored copies hand out the same "random" values.
            Language::Node => Err(
                "a Node runner's generators (V8's Math.random, OpenSSL's DRBG) cannot be reseeded; \
                 it is restarted on the next invoke"
                    .into(),
            ),
        }
    }

    /// Sends a control line and waits for its answer, `{"<key>": true}`.
    /// Answers come in order, one request at a time under the slot lock,
    /// so the next line is this one's; the key is checked all the same.
    fn control(&mut self, message: &Value, key: &str) -> Result<(), String> {
        let mut line = message.to_string();
        line.push('\n');
        if let Err(e) = self.requests.write_all(line.as_bytes()) {
            return Err(format!("cannot send it `{key}`: {e}"));
        }
        let answer = match self.answers.recv_timeout(Some(CONTROL_TIMEOUT)) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "it did not answer `{key}` within {CONTROL_TIMEOUT:?}"
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("it {} before answering `{key}`", self.death()));
            }
        };
        let parsed: Option<Map<String, Value>> = serde_json::from_str(&answer).ok();
        match parsed.as_ref().and_then(|a| a.get(key)) {
            Some(Value::Bool(true)) => Ok(()),
            _ => {
                let detail = parsed
                    .as_ref()
                    .and_then(|a| a.get("error")?.as_str().map(String::from))
                    .map_or(String::new(), |e| format!(": {e}"));
                Err(format!(
                    "it answered `{answer}` instead of {{\"{key}\": true}}{detail}"
                ))
            }
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

/// The runner's answers, read on the calling thread. (A reader thread
/// handing lines over a channel cost one more wake-up per call, which
/// under TCG is tens of microseconds.)
struct Answers {
    file: File,
    /// Read but not yet returned: the start of the next line.
    pending: Vec<u8>,
}

impl Answers {
    fn new(file: File) -> Answers {
        Answers {
            file,
            pending: Vec::new(),
        }
    }

    /// The next line without its newline; `Timeout` after `limit`,
    /// `Disconnected` once the runner closed its end (or wrote a line that
    /// is not UTF-8, which no runner of ours does).
    fn recv_timeout(&mut self, limit: Option<Duration>) -> Result<String, RecvTimeoutError> {
        let deadline = limit.map(|l| Instant::now() + l);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                return String::from_utf8(line).map_err(|_| RecvTimeoutError::Disconnected);
            }
            let wait_ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    // Rounded up: never wake early and spin.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let mut fd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fd, 1, wait_ms) };
            if ready < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(RecvTimeoutError::Disconnected);
            }
            if ready == 0 {
                continue; // the deadline check above decides
            }
            match io::Read::read(&mut self.file, &mut chunk) {
                Ok(0) => return Err(RecvTimeoutError::Disconnected),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(RecvTimeoutError::Disconnected),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_start_up_settings_force_a_restart() {
        let base = env(&[("PATH", "/nonexistent"), ("API_KEY", "a")]);
        let mut secrets = base.clone();
        secrets.insert("API_KEY".into(), "b".into());
        secrets.insert("NEW".into(), "1".into());
        assert_eq!(start_up_change(&base, &secrets), None);
        for name in [
            "PYTHONHASHSEED",
            "PYTHONPATH",
            "LANG",
            "LC_ALL",
            "LD_PRELOAD",
        ] {
            let mut changed = base.clone();
            changed.insert(name.into(), "x".into());
            let why = start_up_change(&base, &changed).unwrap_or_default();
            assert!(why.contains(name), "{name}: {why:?}");
            // Removing one counts as well.
            assert!(start_up_change(&changed, &base).is_some(), "{name}");
        }
    }

    #[test]
    fn a_path_selecting_another_python3_forces_a_restart() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (venv, empty) = (dir.path().join("venv"), dir.path().join("empty"));
        std::fs::create_dir_all(&venv).unwrap();
        std::fs::create_dir_all(&empty).unwrap();
        let python = venv.join("python3");
        std::fs::write(&python, "").unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = |dirs: &[&Path]| {
            let joined: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            env(&[("PATH", &joined.join(":"))])
        };
        // Another PATH, same interpreter: no restart.
        assert_eq!(
            start_up_change(&path(&[&venv]), &path(&[&empty, &venv])),
            None
        );
        let why = start_up_change(&path(&[&empty]), &path(&[&venv, &empty])).unwrap();
        assert!(why.contains(&python.display().to_string()), "{why}");
    }

    /// A real Python runner (python3 on the host) over a module whose
    /// `draw` returns the next random number beside the one `seed(1)`
    /// gives: equal unless the runner reseeded after `fix`.
    struct Python {
        _dir: tempfile::TempDir,
        layout: Layout,
        runners: Runners,
    }

    impl Python {
        fn new() -> Python {
            let dir = tempfile::tempdir().unwrap();
            let app = dir.path().join("app");
            std::fs::create_dir_all(&app).unwrap();
            std::fs::write(
                app.join("rng.py"),
                "import random\n\ndef fix():\n    random.seed(1)\n\ndef draw():\n    return [random.random(), random.Random(1).random()]\n",
            )
            .unwrap();
            let layout = Layout {
                root: dir.path().to_path_buf(),
                runners: Path::new(env!("CARGO_MANIFEST_DIR")).join("runners"),
            };
            Python {
                _dir: dir,
                layout,
                runners: Runners::default(),
            }
        }

        fn call(&self, function: &str) -> Value {
            let call = Call {
                language: Language::Python,
                module: "rng",
                function,
                working_dir: &self.layout.root.join("app"),
                args: Map::new(),
                timeout: Some(Duration::from_secs(60)),
            };
            let env = env(&[("PATH", "/usr/local/bin:/usr/bin:/bin")]);
            match self.runners.invoke(&self.layout, &env, call) {
                Ok(Response::Value { value }) => value,
                other => panic!("{function}: {other:?}"),
            }
        }

        fn reseeded(&self) -> bool {
            let drawn = self.call("draw");
            drawn[0] != drawn[1]
        }
    }

    impl Drop for Python {
        fn drop(&mut self) {
            self.runners.stop_all();
        }
    }

    #[test]
    fn resume_reseeds_an_idle_python_runner() {
        let python = Python::new();
        python.call("fix");
        assert!(!python.reseeded(), "without a resume the state stays");
        python.call("fix");
        python.runners.resumed();
        assert!(python.reseeded());
    }

    #[test]
    fn a_runner_busy_during_resume_reseeds_before_its_next_call() {
        let python = Python::new();
        python.call("fix");
        {
            // As if a call were running: resume must not wait for it.
            let slot = python.runners.slot(Language::Python);
            let _busy = lock(&slot);
            python.runners.resumed();
        }
        assert!(python.reseeded());
        // Reseeded once: a later fix stays fixed.
        python.call("fix");
        assert!(!python.reseeded());
    }
}
