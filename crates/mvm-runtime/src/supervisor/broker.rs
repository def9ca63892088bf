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

use mvm_proto::broker::{BrokerError, BrokerReply, BrokerRequest, ErrorCode, Outcome};
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
    /// Calls a second (see [`max_calls_per_sec`]).
    pub max_rate: u32,
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

/// Calls carried out at once, their replies included until written: a
/// guest that stops reading its end holds at most this many replies (each
/// at most one frame) in the host's memory, and no more calls are read.
const MAX_CALLS: usize = 8;
/// Calls a second a guest may make (the operator's `--egress-max-rate`,
/// as for new gate connections); more are answered `Busy` at once and
/// neither logged nor audited, so a loop of cheap refusals cannot fill the
/// disk or the audit trail.
fn max_calls_per_sec(ctx: &Context) -> u32 {
    ctx.max_rate.max(1)
}
/// The egress log stops growing here (the gate's own cap).
const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

async fn serve(stream: UnixStream, broker: Arc<mvm_broker::Broker>, ctx: Arc<Context>) {
    let (mut reader, mut writer) = stream.into_split();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CALLS));
    // A reply travels with its slot, freed once the reply is written.
    let (tx, mut rx) = mpsc::channel::<(Vec<u8>, tokio::sync::OwnedSemaphorePermit)>(MAX_CALLS);
    let writing = tokio::spawn(async move {
        while let Some((bytes, slot)) = rx.recv().await {
            let written = writer.write_all(&bytes).await;
            drop(slot);
            if let Err(e) = written {
                tracing::warn!("broker channel: writing a reply: {e}");
                return;
            }
        }
    });
    let per_sec = max_calls_per_sec(&ctx);
    let mut rate = Rate::new(per_sec);
    loop {
        // Back-pressure: no slot, no reading.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let request = match read_request(&mut reader).await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(why) => {
                tracing::warn!("broker channel: {why}; closing it");
                break;
            }
        };
        if !rate.take() {
            let outcome = Outcome::Failed(BrokerError::new(
                ErrorCode::Busy,
                format!(
                    "more than {per_sec} calls a second from this guest (the operator's --egress-max-rate)"
                ),
            ));
            if let Some(bytes) = encode(request.id, outcome) {
                let _ = tx.send((bytes, slot)).await;
            }
            continue;
        }
        let (broker, ctx, tx) = (broker.clone(), ctx.clone(), tx.clone());
        tokio::spawn(async move {
            let (outcome, record) = broker.call(request.call).await;
            note(&ctx, &record).await;
            if let Some(bytes) = encode(request.id, outcome) {
                let _ = tx.send((bytes, slot)).await;
            }
        });
    }
    drop(tx);
    let _ = writing.await;
}

/// The reply frame; one that cannot be a frame (too large once encoded)
/// is answered `TooLarge`, so the guest never waits for nothing.
fn encode(id: u64, outcome: Outcome) -> Option<Vec<u8>> {
    match frame::encode_frame(&BrokerReply { id, outcome }) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!("broker channel: encoding a reply: {e}");
            let outcome = Outcome::Failed(BrokerError::new(
                ErrorCode::TooLarge,
                "the answer does not fit in one frame to the guest",
            ));
            frame::encode_frame(&BrokerReply { id, outcome }).ok()
        }
    }
}

/// A fixed one-second window: cheap and enough to bound a flood.
struct Rate {
    per_sec: u32,
    window: Option<Instant>,
    used: u32,
}

impl Rate {
    fn new(per_sec: u32) -> Rate {
        Rate {
            per_sec,
            window: None,
            used: 0,
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        match self.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.used = 0;
            }
        }
        self.used += 1;
        self.used <= self.per_sec
    }
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
    let touch = !secrets.is_empty();
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
    if f.metadata()?.len() >= MAX_LOG_BYTES {
        // Full: later calls are still audited, only this log stops.
        return Ok(());
    }
    // One write per line: appends from the gate processes never interleave.
    f.write_all(format!("{line}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_refuses_past_its_limit_and_opens_again() {
        let mut r = Rate::new(50);
        let allowed = (0..60).filter(|_| r.take()).count();
        assert_eq!(allowed, 50);
        r.window = Some(Instant::now() - Duration::from_secs(2));
        assert!(r.take());
    }

    #[test]
    fn an_answer_too_large_for_a_frame_becomes_too_large() {
        let body = vec![b'x'; mvm_proto::MAX_FRAME_BYTES];
        let outcome = Outcome::Fetched(mvm_proto::broker::FetchResponse {
            status: 200,
            headers: vec![],
            body,
        });
        let bytes = encode(9, outcome).expect("a reply is always sent");
        let reply: BrokerReply = frame::decode(&bytes[frame::HEADER_BYTES..]).unwrap();
        assert_eq!(reply.id, 9);
        let Outcome::Failed(e) = reply.outcome else {
            panic!("{:?}", reply.outcome)
        };
        assert_eq!(e.code, ErrorCode::TooLarge);
    }

    #[test]
    fn the_log_stops_at_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("egress.log");
        std::fs::write(&log, vec![b'.'; MAX_LOG_BYTES as usize]).unwrap();
        append_line(&log, "{}").unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), MAX_LOG_BYTES);
    }
}
