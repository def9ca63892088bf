//! Blocking host-side client: one connection to an agent (usually the QEMU
//! chardev unix socket), any number of requests in flight. A reader thread
//! routes each reply to the request it answers by id.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::frame::{self, FrameError};
use crate::{
    AgentError, DirEntry, ExecRequest, FileStat, FunctionError, GuestFrame, Hello, HookOutcome,
    HookPhase, HostFrame, PROTOCOL_VERSION, ProcessExit, Request, Response,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the guest agent speaks protocol {agent} (agent {agent_version}) but this host speaks {host}; \
         rebuild the guest assets so the agent matches this mvm"
    )]
    ProtocolMismatch {
        agent: u32,
        host: u32,
        agent_version: String,
    },
    #[error(
        "no hello from the guest agent within {0:?}; the guest may still be booting or may have failed early (see the console log)"
    )]
    HelloTimeout(Duration),
    #[error("the connection to the guest agent ended: {0}")]
    Disconnected(String),
    #[error("no reply from the guest agent to `{request}` within {timeout:?}")]
    Timeout {
        request: &'static str,
        timeout: Duration,
    },
    #[error("the guest agent answered `{request}` with `{response}`, which does not answer it")]
    Unexpected {
        request: &'static str,
        response: &'static str,
    },
    #[error("the guest agent could not {request}: {error}")]
    Agent {
        request: &'static str,
        error: AgentError,
    },
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("agent connection I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// Requests waiting for replies, and why the connection ended once it has.
#[derive(Default)]
struct Routes {
    waiting: HashMap<u64, Sender<Response>>,
    closed: Option<String>,
}

type SharedRoutes = Arc<Mutex<Routes>>;

fn lock(routes: &SharedRoutes) -> MutexGuard<'_, Routes> {
    // A panic elsewhere while holding the lock leaves the map usable.
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Client {
    writer: Mutex<Box<dyn Write + Send>>,
    routes: SharedRoutes,
    next_id: AtomicU64,
    hello: Hello,
}

impl Client {
    /// Connects over a unix stream, waiting up to `hello_timeout` for the
    /// agent's hello (the guest may still be booting).
    pub fn connect(stream: UnixStream, hello_timeout: Duration) -> Result<Client, ClientError> {
        stream.set_read_timeout(Some(hello_timeout))?;
        let mut reader = stream.try_clone()?;
        let hello = match read_hello(&mut reader) {
            Err(ClientError::Frame(FrameError::Io(e)))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ClientError::HelloTimeout(hello_timeout));
            }
            other => other?,
        };
        stream.set_read_timeout(None)?;
        Ok(Client::start(reader, stream, hello))
    }

    /// Handshakes over any reader/writer pair (e.g. the pipes of
    /// `mvm-agent --stdio`), blocking until the agent's hello.
    pub fn handshake<R, W>(mut reader: R, writer: W) -> Result<Client, ClientError>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let hello = read_hello(&mut reader)?;
        Ok(Client::start(reader, writer, hello))
    }

    /// Attaches to a channel the agent already greeted on, such as the
    /// serial port of a VM restored from a snapshot: asks for the hello
    /// again instead of waiting for one.
    pub fn attach<R, W>(reader: R, writer: W, timeout: Duration) -> Result<Client, ClientError>
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let placeholder = Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: String::new(),
            capabilities: Vec::new(),
        };
        let mut client = Client::start(reader, writer, placeholder);
        // A restored guest may still be running requests of the
        // connection it was saved on; their late replies must not match
        // one of ours, so our ids start far from any earlier connection's.
        client.next_id = AtomicU64::new(far_id_start());
        match client.call_timeout(Request::Hello, timeout)? {
            Response::Hello(hello) => {
                check_version(&hello)?;
                client.hello = hello;
                Ok(client)
            }
            other => Err(ClientError::Unexpected {
                request: "hello",
                response: other.name(),
            }),
        }
    }

    fn start<R, W>(reader: R, writer: W, hello: Hello) -> Client
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let routes = SharedRoutes::default();
        let reader_routes = routes.clone();
        thread::Builder::new()
            .name("mvm-proto-reader".into())
            .spawn(move || route_replies(reader, reader_routes))
            .expect("spawning the agent reply reader thread");
        Client {
            writer: Mutex::new(Box::new(writer)),
            routes,
            next_id: AtomicU64::new(1),
            hello,
        }
    }

    /// The agent's hello: protocol version, agent version, capabilities.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Sends a request; its replies arrive on the returned [`Pending`].
    pub fn send(&self, request: Request) -> Result<Pending, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let name = request.name();
        let (tx, rx) = mpsc::channel();
        {
            let mut routes = lock(&self.routes);
            if let Some(reason) = &routes.closed {
                return Err(ClientError::Disconnected(reason.clone()));
            }
            routes.waiting.insert(id, tx);
        }
        let pending = Pending {
            id,
            name,
            rx,
            routes: self.routes.clone(),
        };
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        frame::write_frame(&mut *writer, &HostFrame { id, request })?;
        Ok(pending)
    }

    /// Sends a request and waits for its final reply; an agent `Error`
    /// reply becomes [`ClientError::Agent`].
    pub fn call(&self, request: Request) -> Result<Response, ClientError> {
        self.send(request)?.finish(None)
    }

    /// Like [`Client::call`], giving up after `timeout`.
    pub fn call_timeout(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.send(request)?.finish(Some(timeout))
    }

    pub fn ping(&self, timeout: Duration) -> Result<(), ClientError> {
        expect_ok(self.call_timeout(Request::Ping, timeout)?, "ping", |r| {
            matches!(r, Response::Pong)
        })
    }

    pub fn configure(
        &self,
        env: std::collections::BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        expect_ok(self.call(Request::Configure { env })?, "configure", |r| {
            matches!(r, Response::Ok)
        })
    }

    /// Starts a command; read its output and exit from the [`ExecStream`].
    pub fn exec(&self, request: ExecRequest) -> Result<ExecStream, ClientError> {
        Ok(ExecStream {
            pending: self.send(Request::Exec(request))?,
        })
    }

    /// Runs a command to completion, collecting its output.
    pub fn exec_output(&self, request: ExecRequest) -> Result<ExecOutput, ClientError> {
        self.exec(request)?.collect()
    }

    pub fn write_file(&self, path: &str, data: Vec<u8>, mode: u32) -> Result<(), ClientError> {
        self.write_file_with(path, data, mode, false)
    }

    /// `write_file`, or with `append` adds to the end of the file.
    pub fn write_file_with(
        &self,
        path: &str,
        data: Vec<u8>,
        mode: u32,
        append: bool,
    ) -> Result<(), ClientError> {
        let request = Request::FileWrite {
            path: path.into(),
            data,
            mode,
            append,
        };
        expect_ok(self.call(request)?, "file_write", |r| {
            matches!(r, Response::Ok)
        })
    }

    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        match self.call(Request::FileRead { path: path.into() })? {
            Response::FileData { data } => Ok(data),
            other => Err(ClientError::Unexpected {
                request: "file_read",
                response: other.name(),
            }),
        }
    }

    pub fn stat(&self, path: &str) -> Result<FileStat, ClientError> {
        match self.call(Request::Stat { path: path.into() })? {
            Response::Stat(stat) => Ok(stat),
            other => Err(ClientError::Unexpected {
                request: "stat",
                response: other.name(),
            }),
        }
    }

    pub fn list(&self, path: &str) -> Result<Vec<DirEntry>, ClientError> {
        match self.call(Request::List { path: path.into() })? {
            Response::Listing { entries } => Ok(entries),
            other => Err(ClientError::Unexpected {
                request: "list",
                response: other.name(),
            }),
        }
    }

    /// Calls a function entrypoint. The outer error is about the channel or
    /// the agent; the inner one is the function's own exception.
    pub fn invoke(
        &self,
        entrypoint: Option<&str>,
        args: Map<String, Value>,
        timeout_ms: Option<u64>,
    ) -> Result<Result<Value, FunctionError>, ClientError> {
        let request = Request::Invoke {
            entrypoint: entrypoint.map(Into::into),
            args,
            timeout_ms,
        };
        match self.call(request)? {
            Response::Value { value } => Ok(Ok(value)),
            Response::FunctionError(error) => Ok(Err(error)),
            other => Err(ClientError::Unexpected {
                request: "invoke",
                response: other.name(),
            }),
        }
    }

    pub fn run_hook(
        &self,
        phase: HookPhase,
        timeout_ms: Option<u64>,
    ) -> Result<HookOutcome, ClientError> {
        match self.call(Request::RunHook { phase, timeout_ms })? {
            Response::HookResult(outcome) => Ok(outcome),
            other => Err(ClientError::Unexpected {
                request: "run_hook",
                response: other.name(),
            }),
        }
    }

    /// Starts a command entrypoint as a service; returns its name and pid.
    pub fn start_service(&self, entrypoint: Option<&str>) -> Result<(String, u32), ClientError> {
        match self.call(Request::StartService {
            entrypoint: entrypoint.map(Into::into),
        })? {
            Response::ServiceStarted { entrypoint, pid } => Ok((entrypoint, pid)),
            other => Err(ClientError::Unexpected {
                request: "start_service",
                response: other.name(),
            }),
        }
    }

    /// Sets the guest's wall clock to the host's now (a microVM has no RTC)
    /// and seeds its random generator with `entropy` (32 bytes or more):
    /// after boot and after a snapshot restore.
    pub fn sync_clock(&self, entropy: Vec<u8>) -> Result<(), ClientError> {
        let now_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        self.resume(now_unix_ms, entropy)
    }

    pub fn resume(&self, now_unix_ms: u64, entropy: Vec<u8>) -> Result<(), ClientError> {
        expect_ok(
            self.call(Request::Resume {
                now_unix_ms,
                entropy,
            })?,
            "resume",
            |r| matches!(r, Response::Ok),
        )
    }

    /// Starts the runners of the image's function entrypoints without
    /// importing user code, so a snapshot taken next holds warm
    /// interpreters. The agent bounds a runner's start itself (two
    /// minutes), so no timeout is needed here.
    pub fn prewarm(&self) -> Result<(), ClientError> {
        expect_ok(self.call(Request::Prewarm)?, "prewarm", |r| {
            matches!(r, Response::Ok)
        })
    }

    /// Asks the agent to hold every outgoing frame until its next
    /// incoming request; see [`Request::Quiesce`].
    pub fn quiesce(&self, timeout: Duration) -> Result<(), ClientError> {
        expect_ok(
            self.call_timeout(Request::Quiesce, timeout)?,
            "quiesce",
            |r| matches!(r, Response::Ok),
        )
    }

    /// Asks the agent to power off; returns once it has acknowledged.
    pub fn shutdown(&self, reason: &str) -> Result<(), ClientError> {
        let request = Request::Shutdown {
            reason: reason.into(),
        };
        expect_ok(self.call(request)?, "shutdown", |r| {
            matches!(r, Response::Ok)
        })
    }
}

fn expect_ok(
    response: Response,
    request: &'static str,
    ok: impl Fn(&Response) -> bool,
) -> Result<(), ClientError> {
    if ok(&response) {
        Ok(())
    } else {
        Err(ClientError::Unexpected {
            request,
            response: response.name(),
        })
    }
}

fn check_version(hello: &Hello) -> Result<(), ClientError> {
    if hello.protocol == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ClientError::ProtocolMismatch {
            agent: hello.protocol,
            host: PROTOCOL_VERSION,
            agent_version: hello.agent_version.clone(),
        })
    }
}

/// Reads up to the first hello. Replies before it are left over from an
/// earlier host connection to the same serial port and are skipped.
fn read_hello<R: Read>(reader: &mut R) -> Result<Hello, ClientError> {
    loop {
        match frame::read_frame::<_, GuestFrame>(reader)? {
            Some(GuestFrame::Hello(hello)) => {
                check_version(&hello)?;
                return Ok(hello);
            }
            Some(GuestFrame::Reply { .. }) => continue,
            None => {
                return Err(ClientError::Disconnected(
                    "the agent closed the connection before saying hello".into(),
                ));
            }
        }
    }
}

fn route_replies<R: Read>(mut reader: R, routes: SharedRoutes) {
    let reason = loop {
        match frame::read_frame::<_, GuestFrame>(&mut reader) {
            Ok(Some(GuestFrame::Reply { id, response })) => {
                let mut routes = lock(&routes);
                let sender = if response.is_final() {
                    routes.waiting.remove(&id)
                } else {
                    routes.waiting.get(&id).cloned()
                };
                // No sender: the request was abandoned; drop its reply.
                if let Some(sender) = sender {
                    let _ = sender.send(response);
                }
            }
            // The agent greets again after it sees the host reconnect.
            Ok(Some(GuestFrame::Hello(hello))) => {
                if let Err(e) = check_version(&hello) {
                    break e.to_string();
                }
            }
            Ok(None) => break "the agent closed the connection".to_string(),
            // A peer that closes with our requests unread resets the stream.
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                break "the agent closed the connection (reset)".to_string();
            }
            Err(e) => break e.to_string(),
        }
    };
    let mut routes = lock(&routes);
    routes.closed = Some(reason);
    // Dropping the senders wakes every waiter with a disconnect.
    routes.waiting.clear();
}

/// A random request id in [2^40, 2^62): a fresh connection's ids start
/// at 1, so they never meet these; two restored connections' ranges of a
/// million requests each overlap with a chance of about 2^-41.
fn far_id_start() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per process and varied per
    // instance, which is all the randomness this needs.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (1 << 40) + random % ((1 << 62) - (1 << 40))
}

/// The replies to one request. Dropping it abandons the request: later
/// replies are discarded.
pub struct Pending {
    id: u64,
    name: &'static str,
    rx: Receiver<Response>,
    routes: SharedRoutes,
}

impl Pending {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next reply, streamed or final; `None` waits indefinitely.
    pub fn next(&self, timeout: Option<Duration>) -> Result<Response, ClientError> {
        let received = match timeout {
            Some(t) => self.rx.recv_timeout(t),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(response) => Ok(response),
            Err(RecvTimeoutError::Timeout) => Err(ClientError::Timeout {
                request: self.name,
                timeout: timeout.unwrap_or_default(),
            }),
            Err(RecvTimeoutError::Disconnected) => {
                let reason = lock(&self.routes).closed.clone();
                Err(ClientError::Disconnected(
                    reason.unwrap_or_else(|| "the reply reader stopped".into()),
                ))
            }
        }
    }

    /// Waits for the final reply; an `Error` reply becomes
    /// [`ClientError::Agent`], a streamed one [`ClientError::Unexpected`].
    pub fn finish(self, timeout: Option<Duration>) -> Result<Response, ClientError> {
        match self.next(timeout)? {
            Response::Error(error) => Err(ClientError::Agent {
                request: self.name,
                error,
            }),
            r if !r.is_final() => Err(ClientError::Unexpected {
                request: self.name,
                response: r.name(),
            }),
            r => Ok(r),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(&self.routes).waiting.remove(&self.id);
    }
}

/// One piece of a running command's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ProcessExit),
}

/// The streamed replies to an `Exec`.
pub struct ExecStream {
    pending: Pending,
}

impl ExecStream {
    /// The next chunk of output, or the exit (after which the stream is
    /// done). Waits as long as the command runs; the guest enforces the
    /// request's `timeout_ms`.
    pub fn next_event(&mut self) -> Result<ExecEvent, ClientError> {
        match self.pending.next(None)? {
            Response::Stdout { data } => Ok(ExecEvent::Stdout(data)),
            Response::Stderr { data } => Ok(ExecEvent::Stderr(data)),
            Response::Exit(exit) => Ok(ExecEvent::Exit(exit)),
            Response::Error(error) => Err(ClientError::Agent {
                request: "exec",
                error,
            }),
            other => Err(ClientError::Unexpected {
                request: "exec",
                response: other.name(),
            }),
        }
    }

    /// Like [`ExecStream::collect`], keeping only the last `max` bytes of
    /// each stream (a guest can print without end); `dropped` says how
    /// many were left out.
    pub fn collect_tail(mut self, max: usize) -> Result<(ExecOutput, u64), ClientError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut dropped = 0u64;
        let mut keep = |buf: &mut Vec<u8>, data: Vec<u8>| {
            buf.extend(data);
            // Trim in steps of `max` so trimming costs O(1) per byte.
            if buf.len() > 2 * max {
                let cut = buf.len() - max;
                dropped += cut as u64;
                buf.drain(..cut);
            }
        };
        loop {
            match self.next_event()? {
                ExecEvent::Stdout(d) => keep(&mut stdout, d),
                ExecEvent::Stderr(d) => keep(&mut stderr, d),
                ExecEvent::Exit(exit) => {
                    for buf in [&mut stdout, &mut stderr] {
                        if buf.len() > max {
                            let cut = buf.len() - max;
                            dropped += cut as u64;
                            buf.drain(..cut);
                        }
                    }
                    return Ok((
                        ExecOutput {
                            stdout,
                            stderr,
                            exit,
                        },
                        dropped,
                    ));
                }
            }
        }
    }

    pub fn collect(mut self) -> Result<ExecOutput, ClientError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        loop {
            match self.next_event()? {
                ExecEvent::Stdout(d) => stdout.extend(d),
                ExecEvent::Stderr(d) => stderr.extend(d),
                ExecEvent::Exit(exit) => {
                    return Ok(ExecOutput {
                        stdout,
                        stderr,
                        exit,
                    });
                }
            }
        }
    }
}

/// A finished command's whole output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: ProcessExit,
}
