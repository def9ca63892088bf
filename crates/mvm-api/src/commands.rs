//! `/v1/sandboxes/{id}/commands`: run a command with its output streamed
//! as NDJSON, or start one in the background and wait for it, feed its
//! stdin and signal it later.
//!
//! A background command runs through a small `/bin/sh` wrapper in the
//! guest that gives it a directory, `/tmp/.mvm-cmd/<id>/`: `pid` (the
//! command's pid, which is also its process group, since the agent starts
//! every command in a session of its own), `stdin` (a FIFO the command
//! reads, kept open by a holder process until stdin is closed) and
//! `holder`. Signals go to the whole group with `kill -s SIG -- -PID`;
//! stdin is appended to the FIFO through the agent's file requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mvm_runtime::InstanceName;
use mvm_runtime::call::{Command, ExecStatus, Output};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::error::JsonBody;
use crate::sandboxes::{parse_id, seconds};
use crate::{ApiError, Shared, blocking};

/// The longest a command's timeout may be.
const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Output a background command keeps for `wait`; beyond it, output is
/// dropped (and the exit event says so).
const BACKGROUND_OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// Background commands one server runs at once (each holds a worker
/// thread and a guest exec).
const MAX_RUNNING: usize = 128;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Cmd {
    Line(String),
    Argv(Vec<String>),
}

impl Cmd {
    fn argv(&self) -> Result<Vec<String>, ApiError> {
        match self {
            Cmd::Line(l) if l.trim().is_empty() => Err(ApiError::bad_request(
                "`cmd` is an empty command line",
                "send a shell line or an argv list",
            )),
            Cmd::Line(l) => Ok(vec!["/bin/sh".into(), "-c".into(), l.clone()]),
            Cmd::Argv(a) if a.is_empty() || a[0].is_empty() => Err(ApiError::bad_request(
                "`cmd` is an empty argv list",
                "send a shell line or a non-empty argv list",
            )),
            Cmd::Argv(a) => Ok(a.clone()),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Cmd::Line(l) => json!(l),
            Cmd::Argv(a) => json!(a),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    pub cmd: Cmd,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Base64.
    #[serde(default)]
    pub stdin: Option<String>,
    #[serde(default)]
    pub background: bool,
}

/// One NDJSON line.
fn line(v: &Value) -> bytes::Bytes {
    let mut s = v.to_string();
    s.push('\n');
    bytes::Bytes::from(s)
}

fn output_event(out: Output, data: &[u8]) -> Value {
    let kind = match out {
        Output::Stdout => "stdout",
        Output::Stderr => "stderr",
    };
    json!({"type": kind, "data": B64.encode(data)})
}

fn exit_event(status: &ExecStatus) -> Value {
    json!({"type": "exit", "exit_code": status.exit_code(), "signal": status.signal, "timed_out": status.timed_out})
}

fn error_event(e: &ApiError) -> Value {
    json!({"type": "error", "error": e.to_json()})
}

/// What the blocking side of a streamed command sends.
enum Msg {
    Output(Output, Vec<u8>),
    /// `exit` or `error`, the last message.
    Event(Value),
    /// Failed before the command started: answered as an HTTP error.
    Refused(ApiError),
}

fn command_for(app: &Shared, name: &InstanceName, body: &RunBody) -> Result<Command, ApiError> {
    let argv = body.cmd.argv()?;
    let mut env = crate::sandboxes::describe_record(&app.home, name)?.envs;
    env.extend(body.envs.clone());
    let stdin = match &body.stdin {
        Some(s) => B64.decode(s).map_err(|e| {
            ApiError::bad_request(
                format!("`stdin` is not base64: {e}"),
                "encode it with standard base64",
            )
        })?,
        None => Vec::new(),
    };
    Ok(Command {
        argv,
        env,
        cwd: body.cwd.clone(),
        stdin,
        timeout: body
            .timeout
            .map(|t| seconds("timeout", t, MAX_COMMAND_TIMEOUT))
            .transpose()?,
    })
}

/// Runs `command` on a blocking thread, sending its events as they come;
/// an error before the first output is `Refused`.
fn spawn_run(app: &Shared, name: InstanceName, command: Command, tx: mpsc::Sender<Msg>) {
    let home = app.home.clone();
    tokio::task::spawn_blocking(move || {
        let mut started = false;
        let result = mvm_runtime::call::run(&home, &name, command, &mut |out, data| {
            started = true;
            let _ = tx.blocking_send(Msg::Output(out, data.to_vec()));
        });
        let msg = match result {
            Ok(status) => Msg::Event(exit_event(&status)),
            Err(e) if !started => Msg::Refused(e.into()),
            Err(e) => Msg::Event(error_event(&e.into())),
        };
        let _ = tx.blocking_send(msg);
    });
}

pub async fn run(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let name = parse_id(&id)?;
    let body: RunBody = body.parse()?;
    if body.background {
        return start(app, name, body).await;
    }
    let command = command_for(&app, &name, &body)?;
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    spawn_run(&app, name, command, tx);
    // The first message decides the status: a sandbox that cannot run
    // commands is an HTTP error, not a stream holding one.
    let first = match rx.recv().await {
        Some(Msg::Refused(e)) => return Err(e),
        Some(Msg::Output(out, data)) => output_event(out, &data),
        Some(Msg::Event(v)) => v,
        None => {
            return Err(ApiError::internal(
                "the command's worker ended without an answer",
            ));
        }
    };
    let stream = futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        if let Some(v) = first {
            return Some((Ok::<_, std::convert::Infallible>(line(&v)), (None, rx)));
        }
        match rx.recv().await {
            Some(Msg::Output(out, data)) => Some((Ok(line(&output_event(out, &data))), (None, rx))),
            Some(Msg::Event(v)) => Some((Ok(line(&v)), (None, rx))),
            Some(Msg::Refused(e)) => Some((Ok(line(&error_event(&e))), (None, rx))),
            None => None,
        }
    });
    Ok(ndjson(Body::from_stream(stream)))
}

fn ndjson(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The background commands this server started.
#[derive(Default)]
pub struct Registry {
    commands: Mutex<HashMap<(String, String), Arc<Background>>>,
    seq: AtomicU64,
}

pub struct Background {
    pub id: String,
    pub cmd: Value,
    /// Its directory in the guest.
    guest_dir: String,
    log: Mutex<Log>,
    /// Bumped on every change of `log`.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Log {
    /// Output as it came, adjacent chunks of one stream merged (a guest
    /// writing a byte at a time must not cost an entry per byte).
    chunks: Vec<(Output, Vec<u8>)>,
    bytes: usize,
    dropped: u64,
    exit: Option<Value>,
    /// Set when the start was refused: answered as the start's error.
    refused: Option<ApiError>,
}

/// Merged chunks grow to at most this before a new one starts, so `wait`
/// streams long output in pieces.
const MERGE_LIMIT: usize = 64 * 1024;

impl Background {
    fn push(&self, out: Output, data: Vec<u8>) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.bytes + data.len() > BACKGROUND_OUTPUT_CAP {
            log.dropped += data.len() as u64;
        } else {
            log.bytes += data.len();
            match log.chunks.last_mut() {
                Some((o, d)) if *o == out && d.len() + data.len() <= MERGE_LIMIT => {
                    d.extend_from_slice(&data)
                }
                _ => log.chunks.push((out, data)),
            }
        }
        drop(log);
        self.changed.send_modify(|n| *n += 1);
    }

    fn finish(&self, mut v: Value) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.dropped > 0 {
            v["output_dropped_bytes"] = json!(log.dropped);
        }
        log.exit = Some(v);
        drop(log);
        self.changed.send_modify(|n| *n += 1);
    }

    fn summary(&self) -> Value {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let exit_code = log.exit.as_ref().and_then(|e| e.get("exit_code").cloned());
        json!({"command_id": self.id, "cmd": self.cmd, "running": log.exit.is_none(), "exit_code": exit_code})
    }
}

impl Registry {
    fn get(&self, name: &InstanceName, cid: &str) -> Result<Arc<Background>, ApiError> {
        let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands
            .get(&(name.to_string(), cid.to_string()))
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "E_COMMAND_NOT_FOUND",
                    format!(
                        "sandbox `{name}` has no background command `{cid}` started by this server"
                    ),
                    format!("GET /v1/sandboxes/{name}/commands lists them"),
                )
            })
    }

    /// Makes room for one more: forgets the commands of sandboxes that are
    /// gone (a TTL, `mvmctl down`), then refuses past [`MAX_RUNNING`].
    fn admit(&self, home: &std::path::Path) -> Result<(), ApiError> {
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands.retain(|(n, _), _| mvm_runtime::home::instances_root(home).join(n).is_dir());
        let running = commands
            .values()
            .filter(|b| {
                b.log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .exit
                    .is_none()
            })
            .count();
        if running >= MAX_RUNNING {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "E_API_LIMIT",
                format!(
                    "{running} background commands are running through this server, the most it runs at once"
                ),
                "wait for or kill some (GET /v1/sandboxes/{id}/commands lists them)",
            ));
        }
        Ok(())
    }

    /// Forgets the commands of a sandbox that is being killed.
    pub fn forget_sandbox(&self, name: &InstanceName) {
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands.retain(|(n, _), _| n != name.as_str());
    }
}

/// The wrapper a background command runs in (see the module docs). `$1`
/// is its directory; the rest is the command. 125 means the wrapper
/// itself failed, before the command ran.
const WRAPPER: &str = r#"d=$1; shift
/bin/mkdir -p "$d" && /bin/mkfifo -m 600 "$d/stdin" || exit 125
/bin/sleep 2147483647 > "$d/stdin" &
echo $! > "$d/holder"
echo $$ > "$d/pid.tmp" && /bin/mv "$d/pid.tmp" "$d/pid" || exit 125
exec "$@" < "$d/stdin""#;

async fn start(app: Shared, name: InstanceName, body: RunBody) -> Result<Response, ApiError> {
    let mut command = command_for(&app, &name, &body)?;
    app.commands.admit(&app.home)?;
    let n = app.commands.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let cid = format!("c{n}-{:04x}", rand::random::<u16>());
    let guest_dir = format!("/tmp/.mvm-cmd/{cid}");
    let mut argv = vec![
        "/bin/sh".into(),
        "-c".into(),
        WRAPPER.into(),
        "mvm-command".into(),
        guest_dir.clone(),
    ];
    argv.append(&mut command.argv);
    command.argv = argv;
    if !command.stdin.is_empty() {
        return Err(ApiError::bad_request(
            "a background command takes its input through POST .../stdin, not `stdin`",
            "send it after the start",
        ));
    }
    let bg = Arc::new(Background {
        id: cid.clone(),
        cmd: body.cmd.to_json(),
        guest_dir,
        log: Mutex::default(),
        changed: watch::channel(0).0,
    });
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    spawn_run(&app, name.clone(), command, tx);
    app.commands
        .commands
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((name.to_string(), cid.clone()), bg.clone());
    let keep = bg.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Output(out, data) => keep.push(out, data),
                Msg::Event(v) => keep.finish(v),
                Msg::Refused(e) => {
                    keep.log.lock().unwrap_or_else(|e| e.into_inner()).refused = Some(e.clone());
                    keep.finish(error_event(&e));
                }
            }
        }
    });
    // The command is running once its wrapper wrote the pid file (or it
    // already ended); then signals and stdin can reach it.
    wait_started(&app, &name, &bg).await;
    let refused = bg
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .refused
        .clone();
    if let Some(e) = refused {
        app.commands
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(name.to_string(), cid));
        return Err(e);
    }
    Ok((StatusCode::CREATED, Json(json!({"command_id": cid}))).into_response())
}

/// Polls for the wrapper's pid file, for at most 10 s.
async fn wait_started(app: &Shared, name: &InstanceName, bg: &Background) {
    let pid = format!("{}/pid", bg.guest_dir);
    for _ in 0..200 {
        if bg
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exit
            .is_some()
        {
            return;
        }
        let (home, name2, pid2) = (app.home.clone(), name.clone(), pid.clone());
        let found = blocking(move || Ok(mvm_runtime::call::stat(&home, &name2, &pid2).is_ok()))
            .await
            .unwrap_or(false);
        if found {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn list(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    if !mvm_runtime::home::instances_root(&app.home)
        .join(name.as_str())
        .is_dir()
    {
        return Err(mvm_runtime::RuntimeError::NoSuchInstance {
            name: name.to_string(),
        }
        .into());
    }
    let commands = app
        .commands
        .commands
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<_> = commands
        .iter()
        .filter(|((n, _), _)| n == name.as_str())
        .map(|(_, b)| b.summary())
        .collect();
    out.sort_by_key(|v| v["command_id"].as_str().map(str::to_string));
    Ok(Json(json!({"commands": out})))
}

/// Everything the command printed so far, then live, ending with `exit`.
pub async fn wait(
    State(app): State<Shared>,
    Path((id, cid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = parse_id(&id)?;
    let bg = app.commands.get(&name, &cid)?;
    let rx = bg.changed.subscribe();
    // The position read up to: a chunk index and a byte offset in it (the
    // last chunk may still grow by merging).
    let stream = futures_util::stream::unfold(
        (bg, rx, (0usize, 0usize), false),
        |(bg, mut rx, (at, off), ended)| async move {
            if ended {
                return None;
            }
            loop {
                rx.borrow_and_update();
                let (lines, exit, pos) = {
                    let log = bg.log.lock().unwrap_or_else(|e| e.into_inner());
                    let mut lines = Vec::new();
                    for (i, (o, d)) in log.chunks.iter().enumerate().skip(at) {
                        let from = if i == at { off } else { 0 };
                        if from < d.len() {
                            lines.extend_from_slice(&line(&output_event(*o, &d[from..])));
                        }
                    }
                    let pos = match log.chunks.last() {
                        Some((_, d)) => (log.chunks.len() - 1, d.len()),
                        None => (0, 0),
                    };
                    (lines, log.exit.clone(), pos)
                };
                if !lines.is_empty() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(lines)),
                        (bg, rx, pos, false),
                    ));
                }
                if let Some(exit) = exit {
                    return Some((Ok(line(&exit)), (bg, rx, pos, true)));
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Ok(ndjson(Body::from_stream(stream)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StdinBody {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    eof: bool,
}

pub async fn stdin(
    State(app): State<Shared>,
    Path((id, cid)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let bg = app.commands.get(&name, &cid)?;
    let b: StdinBody = body.parse()?;
    let data = match &b.data {
        Some(s) => B64.decode(s).map_err(|e| {
            ApiError::bad_request(
                format!("`data` is not base64: {e}"),
                "encode it with standard base64",
            )
        })?,
        None => Vec::new(),
    };
    if data.len() > mvm_runtime::call::FILE_CHUNK_BYTES {
        return Err(ApiError::bad_request(
            format!(
                "at most {} bytes of stdin per request",
                mvm_runtime::call::FILE_CHUNK_BYTES
            ),
            "send it in several requests",
        ));
    }
    let home = app.home.clone();
    let sent = data.len();
    let fifo = format!("{}/stdin", bg.guest_dir);
    let dir = bg.guest_dir.clone();
    blocking(move || {
        // Only into the FIFO: a plain file there would mean the wrapper
        // did not make it, and appending would just create one.
        let st = mvm_runtime::call::stat(&home, &name, &fifo)?;
        if st.kind != mvm_proto::FileKind::Other {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "E_SANDBOX_STATE",
                format!("{fifo} in the guest is not the command's input pipe"),
                "the command's wrapper did not start; its output says why",
            ));
        }
        if !data.is_empty() {
            mvm_runtime::call::write_file(&home, &name, &fifo, data, 0o600, true)?;
        }
        if b.eof {
            let status = guest_sh(&home, &name, r#"kill "$(/bin/cat "$1/holder")""#, &[&dir])?;
            if status.exit_code() != 0 {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "E_SANDBOX_STATE",
                    "stdin was closed already, or the command ended",
                    "",
                ));
            }
        }
        Ok(Json(json!({"sent": sent})))
    })
    .await
}

/// Runs a short `sh -c SCRIPT sh ARGS...` in the guest.
fn guest_sh(
    home: &std::path::Path,
    name: &InstanceName,
    script: &str,
    args: &[&str],
) -> Result<ExecStatus, ApiError> {
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        script.into(),
        "sh".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let command = Command {
        timeout: Some(Duration::from_secs(10)),
        ..Command::new(argv)
    };
    Ok(mvm_runtime::call::run(home, name, command, &mut |_, _| {})?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KillBody {
    #[serde(default)]
    signal: Option<String>,
}

const SIGNALS: &[&str] = &[
    "KILL", "TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT",
];

pub async fn kill(
    State(app): State<Shared>,
    Path((id, cid)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let bg = app.commands.get(&name, &cid)?;
    let b: KillBody = body.parse_or_default()?;
    let signal = b.signal.unwrap_or_else(|| "KILL".into());
    let signal = signal
        .strip_prefix("SIG")
        .unwrap_or(&signal)
        .to_ascii_uppercase();
    if !SIGNALS.contains(&signal.as_str()) {
        return Err(ApiError::bad_request(
            format!("unknown signal `{signal}`"),
            format!("one of {}", SIGNALS.join(", ")),
        ));
    }
    let home = app.home.clone();
    let dir = bg.guest_dir.clone();
    blocking(move || {
        let status = guest_sh(
            &home,
            &name,
            r#"kill -s "$1" -- -"$(/bin/cat "$2/pid")""#,
            &[&signal, &dir],
        )?;
        Ok(Json(json!({"signalled": status.exit_code() == 0})))
    })
    .await
}
