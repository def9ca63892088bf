//! The host end of the guest's broker channel: each call the agent passes
//! on (`mvm.web_fetch`, `mvm.web_search`) is carried out by
//! [`mvm_broker::Broker`] and answered under its number; every call is a
//! line in the instance's egress log and, when the instance is audited, a
//! `mediated` record (a release when a secret went into it).
//!
//! Frames from the guest are untrusted: read with mvm-proto's caps, parsed
//! strictly, and a frame that does not parse ends the channel (a guest
//! that sends garbage has no business with the host).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mvm_proto::broker::{BrokerReply, BrokerRequest};
use mvm_proto::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::SupervisorError;
use super::trail::Trail;

/// How long to wait for QEMU's end of the channel to listen.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// The running channel; dropping it stops serving.
pub struct Serving {
    task: JoinHandle<()>,
    broker: Arc<mvm_broker::Broker>,
}

impl Serving {
    /// The broker, whose redactor also cleans what the host relays.
    pub fn broker(&self) -> Arc<mvm_broker::Broker> {
        self.broker.clone()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What serving needs besides the broker.
pub struct Context {
    pub home: PathBuf,
    pub egress_log: PathBuf,
    pub trail: Option<Trail>,
    /// Names of secrets whose "last used" is stamped on release.
    pub touch: bool,
}

/// Connects to the channel's socket and serves it in the background.
pub async fn start(
    socket: &Path,
    broker: Arc<mvm_broker::Broker>,
    ctx: Context,
) -> Result<Serving, SupervisorError> {
    let deadline = Instant::now() + CONNECT_WAIT;
    let stream = loop {
        match UnixStream::connect(socket).await {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                return Err(SupervisorError::Io {
                    what: format!("connecting to the broker channel {}", socket.display()),
                    source: e,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let task = tokio::spawn(serve(stream, broker.clone(), Arc::new(ctx)));
    Ok(Serving { task, broker })
}

async fn serve(stream: UnixStream, broker: Arc<mvm_broker::Broker>, ctx: Arc<Context>) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let writing = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if let Err(e) = writer.write_all(&bytes).await {
                tracing::warn!("broker channel: writing a reply: {e}");
                return;
            }
        }
    });
    loop {
        let request = match read_request(&mut reader).await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(why) => {
                tracing::warn!("broker channel: {why}; closing it");
                break;
            }
        };
        let (broker, ctx, tx) = (broker.clone(), ctx.clone(), tx.clone());
        tokio::spawn(async move {
            let (outcome, record) = broker.call(request.call).await;
            note(&ctx, &record).await;
            let reply = BrokerReply {
                id: request.id,
                outcome,
            };
            match frame::encode_frame(&reply) {
                Ok(bytes) => {
                    let _ = tx.send(bytes).await;
                }
                Err(e) => tracing::warn!("broker channel: encoding a reply: {e}"),
            }
        });
    }
    drop(tx);
    let _ = writing.await;
}

/// One request frame, within mvm-proto's size cap.
async fn read_request(
    reader: &mut tokio::net::unix::OwnedReadHalf,
) -> Result<Option<BrokerRequest>, String> {
    let mut header = [0u8; frame::HEADER_BYTES];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let len = frame::body_len(header).map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    if body.len() != len {
        return Err(format!("a frame ended after {} of {len} bytes", body.len()));
    }
    frame::decode(&body).map(Some).map_err(|e| e.to_string())
}

/// The call's egress-log line, audit record and the secrets' last use.
/// Only the audit record is waited for before the guest hears back (a
/// release it saw is a release on record); the log line and the store's
/// "last used" stamp are written on the side.
async fn note(ctx: &Context, record: &mvm_broker::Record) {
    let line = record.json_line();
    let log = ctx.egress_log.clone();
    let secrets = record.secrets.clone();
    let home = ctx.home.clone();
    let touch = ctx.touch && !secrets.is_empty();
    drop(tokio::task::spawn_blocking(move || {
        if let Err(e) = append_line(&log, &line) {
            tracing::warn!("writing {}: {e}", log.display());
        }
        if touch && let Ok(store) = mvm_secrets::Store::open(&home) {
            for name in &secrets {
                if let Err(e) = store.touch_used(name) {
                    tracing::debug!("stamping the last use of {name}: {e}");
                }
            }
        }
    }));
    if let Some(trail) = &ctx.trail {
        trail.mediated(record).await;
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // One write per line: appends from the gate processes never interleave.
    f.write_all(format!("{line}\n").as_bytes())
}
