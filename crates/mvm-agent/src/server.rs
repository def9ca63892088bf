//! Serving the protocol on one connection: a hello, then every request on
//! its own thread so a long exec or invoke never blocks a ping. Replies
//! share one [`Outbox`]; each frame is a single write under its lock, so
//! they never interleave.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use mvm_proto::frame::{self, FrameError};
use mvm_proto::{
    AgentError, ErrorKind, ExecRequest, GuestFrame, Hello, HookPhase, HostFrame, PROTOCOL_VERSION,
    Request, Response,
};

use crate::launch::{self, Entrypoint};
use crate::layout::Layout;
use crate::runner::{Call, Runners};
use crate::service::Services;
use crate::workers::Workers;
use crate::{files, hooks, log, process, shutdown};

pub type Writer = Arc<Outbox>;

/// The longest the agent holds its frames after a `Quiesce` without a
/// request following. Guest time: it does not run while the VM is
/// stopped for the save, only if a host never sent the release.
const QUIESCE_HOLD_LIMIT: Duration = Duration::from_secs(30);

/// Where every frame to the host goes. After a `Quiesce` it holds every
/// frame back (the threads sending them wait here, before writing a
/// byte) until the next request arrives, so a snapshot taken meanwhile
/// has no frame half-sent, however many commands are streaming output.
pub struct Outbox {
    state: Mutex<OutboxState>,
    released: Condvar,
}

struct OutboxState {
    writer: Box<dyn Write + Send>,
    held_since: Option<Instant>,
}

impl Outbox {
    pub fn new(writer: Box<dyn Write + Send>) -> Writer {
        Arc::new(Outbox {
            state: Mutex::new(OutboxState {
                writer,
                held_since: None,
            }),
            released: Condvar::new(),
        })
    }

    /// A new host connection on the same port: its writer, nothing held.
    /// Threads of the old connection's requests write here too, under
    /// the same lock, so their frames cannot tear the new stream.
    pub fn reconnect(&self, writer: Box<dyn Write + Send>) {
        let mut state = self.lock();
        state.writer = writer;
        state.held_since = None;
        self.released.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, frame: &GuestFrame) -> Result<(), FrameError> {
        let mut state = self.lock();
        while let Some(since) = state.held_since {
            let left = QUIESCE_HOLD_LIMIT.saturating_sub(since.elapsed());
            if left.is_zero() {
                log!("no request followed a quiesce within {QUIESCE_HOLD_LIMIT:?}; sending again");
                state.held_since = None;
                break;
            }
            state = self
                .released
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        frame::write_frame(&mut state.writer, frame)
    }

    /// Sends `frame` (the quiesce's acknowledgement), then holds all
    /// others; one lock, so nothing slips in between.
    fn send_then_hold(&self, frame: &GuestFrame) -> Result<(), FrameError> {
        let mut state = self.lock();
        frame::write_frame(&mut state.writer, frame)?;
        state.held_since = Some(Instant::now());
        Ok(())
    }

    /// The host spoke again: frames may flow.
    fn release(&self) {
        let mut state = self.lock();
        if state.held_since.take().is_some() {
            self.released.notify_all();
        }
    }
}

pub use crate::shutdown::Mode;

pub struct Agent {
    pub mode: Mode,
    pub layout: Layout,
    /// Set by `Configure`.
    env: RwLock<BTreeMap<String, String>>,
    /// What the last successful `before_start` exported (see
    /// [`crate::hook_env`]); cleared by `Configure`.
    exported: RwLock<BTreeMap<String, String>>,
    /// One `before_start` at a time, without blocking `env()` meanwhile
    /// (an `exec` into an instance whose hook hangs must still work).
    before_start_running: Mutex<()>,
    pub runners: Runners,
    pub services: Services,
    shutting_down: AtomicBool,
    launch: launch::Cache,
    workers: Workers,
}

impl Agent {
    pub fn new(mode: Mode, layout: Layout) -> Agent {
        Agent {
            mode,
            layout,
            env: RwLock::default(),
            exported: RwLock::default(),
            before_start_running: Mutex::default(),
            runners: Runners::default(),
            services: Services::default(),
            shutting_down: AtomicBool::new(false),
            launch: launch::Cache::default(),
            workers: Workers::new(),
        }
    }

    pub fn hello(&self) -> Hello {
        let mut capabilities = vec![
            "exec", "files", "invoke", "hooks", "service", "prewarm", "quiesce",
        ];
        if self.mode == Mode::Guest {
            capabilities.push("resume");
        }
        Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            capabilities: capabilities.into_iter().map(String::from).collect(),
        }
    }

    /// What every child gets: the configured environment plus what
    /// `before_start` exported (never a configured name, so the host's
    /// values stand).
    fn env(&self) -> BTreeMap<String, String> {
        let mut env = self.configured_env();
        env.extend(
            self.exported
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        );
        env
    }

    /// The base environment plus what the host configured: what
    /// `before_start` starts from, at every run.
    fn configured_env(&self) -> BTreeMap<String, String> {
        let mut env = process::base_env();
        process::add_project_envs(&mut env, &self.layout.app_dir());
        env.extend(self.configured());
        env
    }

    fn configured(&self) -> BTreeMap<String, String> {
        self.env.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `before_start` and keeps what it exported for every later
    /// child; a failed run leaves nothing exported.
    fn before_start(&self, timeout: Option<Duration>) -> Result<Response, AgentError> {
        let _one = self
            .before_start_running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let result = hooks::run_before_start(
            &self.layout,
            &self.configured_env(),
            &self.configured(),
            timeout,
        );
        let now = match &result {
            Ok((_, exports)) => exports.vars.clone(),
            Err(_) => BTreeMap::new(),
        };
        let changed = {
            let mut exported = self.exported.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *exported, now) != *exported
        };
        if changed {
            // Warm runners hold the old environment.
            self.runners.set_env(&self.env());
        }
        result.map(|(response, _)| response)
    }
}

/// Serves one connection until the host closes it. Framing errors end the
/// connection, since the stream can no longer be trusted to be in step.
pub fn serve(agent: &Arc<Agent>, mut reader: impl Read, writer: Writer) -> Result<(), FrameError> {
    send(&writer, &GuestFrame::Hello(agent.hello()))?;
    loop {
        let Some(body) = frame::read_frame_bytes(&mut reader)? else {
            return Ok(());
        };
        // Whatever it is, the host is past its snapshot.
        writer.release();
        match frame::decode::<HostFrame>(&body) {
            Ok(HostFrame { id, request }) => {
                let (agent, request_writer) = (agent.clone(), writer.clone());
                let workers = agent.workers.clone();
                let spawned = workers.run(move || {
                    let handled = panic::catch_unwind(AssertUnwindSafe(|| {
                        handle(&agent, &request_writer, id, request)
                    }));
                    // A bug must not leave the host waiting forever.
                    if handled.is_err() {
                        let error = AgentError {
                            kind: ErrorKind::Io,
                            message: "the agent failed internally; see the instance log".into(),
                        };
                        reply(&request_writer, id, Response::Error(error));
                    }
                });
                if let Err(e) = spawned {
                    let error = AgentError {
                        kind: ErrorKind::Io,
                        message: format!("cannot start a thread for the request: {e}"),
                    };
                    reply(&writer, id, Response::Error(error));
                }
            }
            Err(e) => {
                // Answer a request we cannot parse if its id is readable, so
                // the host's call fails instead of hanging.
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id")?.as_u64());
                log!("refused a request: {e}");
                if let Some(id) = id {
                    let error = AgentError {
                        kind: ErrorKind::InvalidRequest,
                        message: e.to_string(),
                    };
                    reply(&writer, id, Response::Error(error));
                }
            }
        }
    }
}

fn send(writer: &Writer, frame: &GuestFrame) -> Result<(), FrameError> {
    writer.send(frame)
}

/// Sends a reply; a reply too large for a frame becomes an error saying so.
/// A host that went away is not an error for the agent.
fn reply(writer: &Writer, id: u64, response: Response) {
    match send(writer, &GuestFrame::Reply { id, response }) {
        Ok(()) => {}
        Err(FrameError::TooLarge { len, max }) => {
            let error = AgentError {
                kind: ErrorKind::TooLarge,
                message: format!("the reply is {len} bytes, more than the {max} a frame may carry"),
            };
            let _ = send(
                writer,
                &GuestFrame::Reply {
                    id,
                    response: Response::Error(error),
                },
            );
        }
        Err(e) => log!("could not send the reply to request {id}: {e}"),
    }
}

fn handle(agent: &Agent, writer: &Writer, id: u64, request: Request) {
    if agent.shutting_down.load(Ordering::SeqCst) {
        let error = AgentError {
            kind: ErrorKind::ShuttingDown,
            message: "the agent is powering off".into(),
        };
        return reply(writer, id, Response::Error(error));
    }
    if let Request::Shutdown { reason } = &request {
        agent.shutting_down.store(true, Ordering::SeqCst);
        log!("shutting down: {reason}");
        reply(writer, id, Response::Ok);
        shutdown::run(agent.mode, &agent.runners, &agent.services);
    }
    if let Request::Quiesce = request {
        let ack = GuestFrame::Reply {
            id,
            response: Response::Ok,
        };
        if let Err(e) = writer.send_then_hold(&ack) {
            log!("could not acknowledge the quiesce {id}: {e}");
        }
        return;
    }
    let response = match answer(agent, writer, id, request) {
        Ok(response) => response,
        Err(error) => Response::Error(error),
    };
    reply(writer, id, response);
}

fn answer(
    agent: &Agent,
    writer: &Writer,
    id: u64,
    request: Request,
) -> Result<Response, AgentError> {
    match request {
        Request::Ping => Ok(Response::Pong),
        Request::Hello => Ok(Response::Hello(agent.hello())),
        Request::Configure { env } => {
            *agent.env.write().unwrap_or_else(|p| p.into_inner()) = env;
            // A new configuration starts over: before_start runs again on it.
            agent.exported.write().unwrap_or_else(|p| p.into_inner()).clear();
            // Warm runners hold the old environment; a prewarmed one that
            // has run no user code takes the new one in place.
            agent.runners.set_env(&agent.env());
            Ok(Response::Ok)
        }
        Request::Exec(exec) => run_exec(agent, writer, id, exec),
        Request::FileWrite { path, data, mode, append } => files::write(&path, &data, mode, append),
        Request::FileRead { path } => files::read(&path),
        Request::Stat { path } => files::stat(&path),
        Request::List { path } => files::list(&path),
        Request::Invoke { entrypoint, args, timeout_ms } => {
            let launch = agent.launch.get(&agent.layout.launch_json())?;
            match launch::find(&launch, entrypoint.as_deref())? {
                Entrypoint::Function { language, module, function, working_dir, .. } => {
                    let call = Call {
                        language: *language,
                        module,
                        function,
                        working_dir: Path::new(working_dir),
                        args,
                        timeout: timeout_ms.map(Duration::from_millis),
                    };
                    agent.runners.invoke(&agent.layout, &agent.env(), call)
                }
                Entrypoint::Command { name, .. } => Err(AgentError {
                    kind: ErrorKind::WrongEntrypointKind,
                    message: format!("`{name}` is a command entrypoint; it runs as a service and cannot be invoked"),
                }),
            }
        }
        Request::RunHook { phase: HookPhase::BeforeStart, timeout_ms } => {
            agent.before_start(timeout_ms.map(Duration::from_millis))
        }
        Request::RunHook { phase, timeout_ms } => {
            hooks::run(&agent.layout, &agent.env(), phase, timeout_ms.map(Duration::from_millis))
        }
        Request::StartService { entrypoint } => {
            let launch = agent.launch.get(&agent.layout.launch_json())?;
            match launch::find(&launch, entrypoint.as_deref())? {
                Entrypoint::Command { name, command, working_dir, .. } => {
                    agent.services.start(name, command, PathBuf::from(working_dir), agent.env())
                }
                Entrypoint::Function { name, .. } => Err(AgentError {
                    kind: ErrorKind::WrongEntrypointKind,
                    message: format!("`{name}` is a function entrypoint; call it with invoke instead of starting it"),
                }),
            }
        }
        Request::Prewarm => {
            let launch = agent.launch.get(&agent.layout.launch_json())?;
            let mut languages = Vec::new();
            let mut working_dirs: Vec<&str> = Vec::new();
            for entrypoint in &launch.entrypoints {
                if let Entrypoint::Function { language, working_dir, .. } = entrypoint {
                    if !languages.contains(language) {
                        languages.push(*language);
                    }
                    if !working_dirs.contains(&working_dir.as_str()) {
                        working_dirs.push(working_dir);
                    }
                }
            }
            // Which languages are worth prewarming is the runners' call.
            for language in languages {
                agent.runners.prewarm(&agent.layout, &agent.env(), language, &working_dirs)?;
            }
            Ok(Response::Ok)
        }
        Request::Resume { now_unix_ms, entropy } => match agent.mode {
            Mode::Guest => {
                let resumed = crate::pid1::resume(now_unix_ms, &entropy)?;
                // The kernel was reseeded; now the runners' own generators.
                agent.runners.resumed();
                Ok(resumed)
            }
            Mode::Dev => Err(AgentError {
                kind: ErrorKind::Unsupported,
                message: "resume sets the clock and seeds the random pool; a dev-mode agent leaves its host alone".into(),
            }),
        },
        Request::Shutdown { .. } | Request::Quiesce => unreachable!("handled before dispatch"),
    }
}

fn run_exec(
    agent: &Agent,
    writer: &Writer,
    id: u64,
    exec: ExecRequest,
) -> Result<Response, AgentError> {
    if exec.argv.is_empty() {
        return Err(AgentError {
            kind: ErrorKind::InvalidRequest,
            message: "exec needs at least a program name".into(),
        });
    }
    let mut env = agent.env();
    env.extend(exec.env);
    let cwd = exec
        .cwd
        .map(Into::into)
        .unwrap_or_else(|| agent.layout.app_dir());
    let mut command = process::command(&exec.argv, &env, &cwd);
    let on_stdout = |data| reply(writer, id, Response::Stdout { data });
    let on_stderr = |data| reply(writer, id, Response::Stderr { data });
    let timeout = exec.timeout_ms.map(Duration::from_millis);
    match process::run(&mut command, &exec.stdin, timeout, &on_stdout, &on_stderr) {
        Ok(exit) => Ok(Response::Exit(exit)),
        Err(e) => Err(AgentError {
            kind: ErrorKind::SpawnFailed,
            message: format!("cannot run `{}` in {}: {e}", exec.argv[0], cwd.display()),
        }),
    }
}
