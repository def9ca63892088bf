//! The supervisor's one connection to the guest agent. QEMU's chardev
//! accepts a single client, so every CLI request is multiplexed onto this
//! connection; `mvm_proto::Client` routes replies by request id, and its
//! blocking calls run on tokio's blocking pool.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mvm_proto::{Client, ClientError, ExecEvent, ExecRequest, Hello, HookOutcome, HookPhase};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::control::{Bytes, Event};

use super::error::SupervisorError;

/// How often to retry while QEMU has not yet created the agent socket.
const SOCKET_POLL: Duration = Duration::from_millis(20);

/// Exec events buffered between the guest and a slow CLI client.
const EXEC_EVENT_BUFFER: usize = 64;

#[derive(Clone)]
pub struct Agent {
    client: Arc<Client>,
    /// Every request holds a read guard while it runs (an exec only while
    /// it is sent, when the agent can quiesce); a snapshot takes the
    /// write side, so the guest is saved between frames, never with a
    /// reply half-sent (a restored copy's new connection would start
    /// mid-frame).
    quiet: Arc<tokio::sync::RwLock<()>>,
}

/// Held while nothing may be in flight on the agent channel: no request
/// is being sent and the agent holds back its frames (running commands'
/// output included). Dropping it lets both flow again.
pub struct Quiet {
    _requests: tokio::sync::OwnedRwLockWriteGuard<()>,
    /// Set when the agent acknowledged a quiesce: it sends nothing until
    /// our next request, so dropping sends one.
    agent_held: Option<Arc<Client>>,
}

impl Drop for Quiet {
    fn drop(&mut self) {
        if let Some(client) = self.agent_held.take() {
            // Any request releases the agent. When the guest is gone (a
            // pause) it fails at once; when it is still stopped, it waits.
            let _ = std::thread::Builder::new()
                .name("mvm-quiesce-release".into())
                .spawn(move || {
                    if let Err(e) = client.ping(RELEASE_TIMEOUT) {
                        tracing::debug!("releasing the agent after a quiesce: {e}");
                    }
                });
        }
    }
}

/// How long the release after a quiesce waits for the agent's answer.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// A hook's outcome as a shell would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// 0 also when the image has no script for the phase.
    pub exit_code: i32,
    pub output: String,
}

impl From<HookOutcome> for HookRun {
    fn from(outcome: HookOutcome) -> HookRun {
        let exit_code = match outcome.exit {
            None => 0,
            Some(exit) if exit.timed_out => crate::call::EXIT_TIMED_OUT,
            Some(exit) => exit.code.unwrap_or_else(|| 128 + exit.signal.unwrap_or(0)),
        };
        HookRun {
            exit_code,
            output: outcome.output_tail,
        }
    }
}

fn agent_error(e: ClientError) -> SupervisorError {
    match e {
        ClientError::Disconnected(_) => SupervisorError::AgentGone,
        ClientError::Agent { error, .. } => SupervisorError::Agent(error.to_string()),
        other => SupervisorError::Client(other),
    }
}

/// Connects to QEMU's agent socket, retrying until `deadline` while QEMU
/// has not yet created it.
async fn connect_socket(
    socket: &Path,
    deadline: Instant,
) -> Result<std::os::unix::net::UnixStream, SupervisorError> {
    loop {
        match crate::control::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(SOCKET_POLL).await,
            Err(e) => {
                return Err(SupervisorError::Io {
                    what: format!("connecting to the agent socket {}", socket.display()),
                    source: e,
                });
            }
        }
    }
}

/// Runs a blocking client call off the async thread.
/// A ping answers at once unless the guest is wedged.
const PING_LIMIT: Duration = Duration::from_secs(10);

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, SupervisorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SupervisorError::Agent(format!("agent call panicked: {e}")))?
        .map_err(agent_error)
}

/// The file requests a control client may make.
pub enum FileOp {
    Write {
        path: String,
        data: Vec<u8>,
        mode: u32,
        append: bool,
    },
    Stat {
        path: String,
    },
    List {
        path: String,
    },
}

impl Agent {
    /// Connects to QEMU's agent socket (relative to the instance directory,
    /// the supervisor's working directory) and waits for the agent's hello
    /// until `deadline`.
    pub async fn connect(socket: &Path, deadline: Instant) -> Result<Agent, SupervisorError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let stream = connect_socket(socket, deadline).await?;
        let hello_timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let client = tokio::task::spawn_blocking(move || Client::connect(stream, hello_timeout))
            .await
            .map_err(|e| SupervisorError::Agent(format!("agent handshake panicked: {e}")))?
            .map_err(|e| match e {
                ClientError::HelloTimeout(_) => SupervisorError::NoHello(timeout),
                other => agent_error(other),
            })?;
        Ok(Agent::new(client))
    }

    fn new(client: Client) -> Agent {
        Agent {
            client: Arc::new(client),
            quiet: Arc::default(),
        }
    }

    /// Connects to the agent of a guest restored from a snapshot: it
    /// greeted on the channel before it was saved, so the hello is asked
    /// for again.
    pub async fn attach(socket: &Path, deadline: Instant) -> Result<Agent, SupervisorError> {
        let stream = connect_socket(socket, deadline).await?;
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let client = tokio::task::spawn_blocking(move || {
            let reader = stream.try_clone()?;
            Client::attach(reader, stream, timeout)
        })
        .await
        .map_err(|e| SupervisorError::Agent(format!("agent handshake panicked: {e}")))?
        .map_err(agent_error)?;
        Ok(Agent::new(client))
    }

    /// Waits until no request is in flight and holds new ones back until
    /// the guard is dropped; gives up after `timeout`.
    pub async fn quiesce(&self, timeout: Duration) -> Result<Quiet, SupervisorError> {
        let started = Instant::now();
        let requests = tokio::time::timeout(timeout, self.quiet.clone().write_owned())
            .await
            .map_err(|_| {
                SupervisorError::Machine(format!(
                    "requests to the guest were still running after {timeout:?} (an invoke or a file transfer); \
                     a snapshot is taken between requests, try again when they finish"
                ))
            })?;
        if !self.can_quiesce() {
            return Ok(Quiet {
                _requests: requests,
                agent_held: None,
            });
        }
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        // Built first, so a quiesce that failed late (the agent may hold
        // its frames after all) is released too.
        let quiet = Quiet {
            _requests: requests,
            agent_held: Some(self.client.clone()),
        };
        let client = self.client.clone();
        blocking(move || client.quiesce(left)).await?;
        Ok(quiet)
    }

    /// Whether the agent holds its frames on request; an image built
    /// before it could runs each exec under the read guard instead.
    fn can_quiesce(&self) -> bool {
        self.client
            .hello()
            .capabilities
            .iter()
            .any(|c| c == "quiesce")
    }

    async fn hold(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.quiet.clone().read_owned().await
    }

    /// Starts the image's function runners before any user code runs, so
    /// a template snapshot holds warm interpreters.
    pub async fn prewarm(&self) -> Result<(), SupervisorError> {
        let _held = self.hold().await;
        let client = self.client.clone();
        blocking(move || client.prewarm()).await
    }

    /// A round trip to the agent that does nothing.
    pub async fn ping(&self) -> Result<(), SupervisorError> {
        let _held = self.hold().await;
        let client = self.client.clone();
        blocking(move || client.ping(PING_LIMIT)).await
    }

    pub fn hello(&self) -> &Hello {
        self.client.hello()
    }

    /// Sets the guest clock to the host's (the microVM has no RTC, so it
    /// boots in 1970) and seeds its entropy pool from the host.
    pub async fn sync_clock(&self) -> Result<(), SupervisorError> {
        let _held = self.hold().await;
        let client = self.client.clone();
        let entropy: [u8; 32] = rand::random();
        blocking(move || client.sync_clock(entropy.to_vec())).await
    }

    pub async fn configure(&self, env: &BTreeMap<String, String>) -> Result<(), SupervisorError> {
        let _held = self.hold().await;
        let (client, env) = (self.client.clone(), env.clone());
        blocking(move || client.configure(env)).await
    }

    pub async fn write_file(
        &self,
        path: &str,
        data: Vec<u8>,
        mode: u32,
    ) -> Result<(), SupervisorError> {
        let _held = self.hold().await;
        let (client, path) = (self.client.clone(), path.to_string());
        blocking(move || client.write_file(&path, data, mode)).await
    }

    pub async fn run_hook(&self, phase: HookPhase) -> Result<HookRun, SupervisorError> {
        let _held = self.hold().await;
        let client = self.client.clone();
        blocking(move || client.run_hook(phase, None))
            .await
            .map(HookRun::from)
    }

    pub async fn start_service(&self, entrypoint: &str) -> Result<(), SupervisorError> {
        let _held = self.hold().await;
        let (client, name) = (self.client.clone(), entrypoint.to_string());
        let asked = name.clone();
        blocking(move || client.start_service(Some(&asked)))
            .await
            .map(drop)
            .map_err(|e| SupervisorError::Service {
                name,
                source: Box::new(e),
            })
    }

    /// The function's result or its exception, as a control event.
    pub async fn invoke(
        &self,
        entrypoint: Option<String>,
        args: Map<String, Value>,
    ) -> Result<Event, SupervisorError> {
        let _held = self.hold().await;
        let client = self.client.clone();
        let outcome = blocking(move || client.invoke(entrypoint.as_deref(), args, None)).await?;
        Ok(match outcome {
            Ok(value) => Event::InvokeResult { value },
            Err(e) => Event::InvokeError {
                kind: e.kind,
                message: e.message,
                traceback: e.traceback,
            },
        })
    }

    /// A file request as a control event; the guest's refusal (no such
    /// path, permission denied, ...) is a `FileError` event, not a failure
    /// of the channel.
    pub async fn file(&self, op: FileOp) -> Result<Event, SupervisorError> {
        let _held = self.hold().await;
        let client = self.client.clone();
        let answer = tokio::task::spawn_blocking(move || match op {
            FileOp::Write {
                path,
                data,
                mode,
                append,
            } => client
                .write_file_with(&path, data, mode, append)
                .map(|()| Event::Done),
            FileOp::Stat { path } => client.stat(&path).map(|stat| Event::Stat { stat }),
            FileOp::List { path } => client.list(&path).map(|entries| Event::Listing { entries }),
        })
        .await
        .map_err(|e| SupervisorError::Agent(format!("agent call panicked: {e}")))?;
        match answer {
            Ok(event) => Ok(event),
            Err(ClientError::Agent { error, .. }) => Ok(Event::FileError {
                kind: serde_json::to_value(error.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into()),
                message: error.message,
            }),
            Err(e) => Err(agent_error(e)),
        }
    }

    /// Starts a command; its output and exit arrive on the returned channel
    /// as they happen. The channel ends after `Exit` or `Failed`.
    pub async fn exec(
        &self,
        request: ExecRequest,
    ) -> Result<mpsc::Receiver<Event>, SupervisorError> {
        // Held while the request is sent; by an agent that cannot
        // quiesce, until the command's last event (in the relay thread).
        let held = self.hold().await;
        let client = self.client.clone();
        let mut stream = blocking(move || client.exec(request)).await?;
        let held = if self.can_quiesce() {
            drop(held);
            None
        } else {
            Some(held)
        };
        let (tx, rx) = mpsc::channel(EXEC_EVENT_BUFFER);
        // The stream blocks per event; a thread of its own keeps the async
        // thread free for other clients while the command runs.
        std::thread::Builder::new()
            .name("mvm-exec-relay".into())
            .spawn(move || {
                let _held = held;
                loop {
                    let (event, last) = match stream.next_event() {
                        Ok(ExecEvent::Stdout(data)) => (Event::Stdout { data: Bytes(data) }, false),
                        Ok(ExecEvent::Stderr(data)) => (Event::Stderr { data: Bytes(data) }, false),
                        Ok(ExecEvent::Exit(exit)) => (
                            Event::Exit {
                                code: exit.code,
                                signal: exit.signal,
                                timed_out: exit.timed_out,
                            },
                            true,
                        ),
                        Err(e) => (
                            Event::Failed {
                                message: e.to_string(),
                            },
                            true,
                        ),
                    };
                    // A client that went away still lets the command finish.
                    let _ = tx.blocking_send(event);
                    if last {
                        break;
                    }
                }
            })
            .map_err(|source| SupervisorError::Io {
                what: "starting the exec relay thread".into(),
                source,
            })?;
        Ok(rx)
    }

    /// Asks the guest to power off; returns once the agent acknowledged.
    pub async fn shutdown(&self) -> Result<(), SupervisorError> {
        let client = self.client.clone();
        blocking(move || client.shutdown("mvmctl down")).await
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use mvm_proto::{AgentError, ErrorKind};

    use super::*;

    /// The agent's refusal stays its text; a failed connection is kept as
    /// the cause and reads as it did when it was flattened to text.
    #[test]
    fn client_failures_keep_their_cause_and_their_text() {
        let refused = agent_error(ClientError::Agent {
            request: "invoke",
            error: AgentError {
                kind: ErrorKind::NoSuchEntrypoint,
                message: "no entrypoint named `nope`".into(),
            },
        });
        assert_eq!(
            refused.to_string(),
            "guest agent: no entrypoint named `nope` (no_such_entrypoint)"
        );

        let timeout = ClientError::Timeout {
            request: "invoke",
            timeout: Duration::from_secs(3),
        };
        let text = timeout.to_string();
        let failed = agent_error(timeout);
        assert_eq!(failed.to_string(), format!("guest agent: {text}"));
        let cause = failed
            .source()
            .and_then(|s| s.downcast_ref::<ClientError>());
        assert!(
            matches!(cause, Some(ClientError::Timeout { .. })),
            "{failed:?}"
        );

        let gone = agent_error(ClientError::Disconnected("reset".into()));
        assert!(matches!(gone, SupervisorError::AgentGone), "{gone:?}");
    }

    #[test]
    fn a_failed_service_start_keeps_why() {
        let e = SupervisorError::Service {
            name: "web".into(),
            source: Box::new(SupervisorError::AgentGone),
        };
        assert_eq!(
            e.to_string(),
            "starting the `web` service failed: the guest agent connection closed"
        );
        let cause = e.source().map(|s| s.to_string());
        assert_eq!(cause.as_deref(), Some("the guest agent connection closed"));
    }
}
