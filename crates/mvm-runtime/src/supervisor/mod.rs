//! The per-instance supervisor (`mvmctl __supervise NAME`): boots the VM,
//! runs the lifecycle, holds the single agent connection and serves CLI
//! clients on `control.sock` until the instance stops.

mod agent;
mod boot;
mod broker;
mod capture;
mod error;
mod machine;
mod serve;
mod trail;
mod udp_relay;

use std::io::Write;
use std::path::Path;

pub use error::SupervisorError;
use trail::Trail;

use crate::control::{self, UpReport};
use crate::home::InstanceDir;
use crate::logs;
use crate::name::InstanceName;
use crate::process::ProcessRef;
use crate::state::{InstanceState, Status, now_unix_ms};
use crate::up::FAILURE_LOG_LINES;

/// Runs the supervisor of `name` to its end; returns the process exit
/// status. Reports the start-up outcome as one JSON line on stdout (the
/// pipe `mvmctl up` reads); logs go to stderr (`supervisor.log`).
pub fn run(home: &Path, name: &InstanceName) -> i32 {
    // The supervisor moves into the instance directory: every path it
    // keeps must not depend on where it started.
    let home = &std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&UpReport::Failed {
                message: format!("cannot start the async runtime: {e}"),
                log_tail: String::new(),
            });
            return 1;
        }
    };
    runtime.block_on(supervise(home, name))
}

async fn supervise(home: &Path, name: &InstanceName) -> i32 {
    let dir = InstanceDir::new(home, name.clone());
    // The secrets' values are read first, so a secret removed since `up`
    // costs no boot, and a failure below can be reported redacted.
    let broker = match prepare_broker(home, &dir) {
        Ok(b) => b,
        Err(e) => {
            fail(&dir, e, None);
            return 1;
        }
    };
    match start(home, &dir, broker.clone()).await {
        Ok((listener, started, trail, relays)) => {
            let boot::Started {
                agent,
                machine,
                broker,
                ..
            } = started;
            let code =
                serve::serve(home, listener, agent, machine, dir, trail, broker.broker()).await;
            drop(broker);
            // The published UDP ports close with the instance.
            drop(relays);
            code
        }
        Err(e) => {
            fail(&dir, e, Some(&broker));
            1
        }
    }
}

/// Reports a failed start-up (hook output in it redacted) and removes
/// what it left.
fn fail(dir: &InstanceDir, e: SupervisorError, broker: Option<&mvm_broker::Broker>) {
    let redact = |s: String| match broker {
        Some(b) => b.redactor().redact_str(&s),
        None => s,
    };
    let message = redact(e.to_string());
    tracing::error!("start-up failed: {message}");
    let log_tail = redact(logs::tail(&dir.console_log(), FAILURE_LOG_LINES));
    match InstanceState::load(&dir.state_json()) {
        // A failed resume keeps the paused state to try again (or `down`).
        Ok(mut st) if st.start == crate::state::Start::Resume => {
            st.status = Status::Paused;
            st.supervisor = None;
            st.qemu = None;
            let _ = std::fs::remove_file(dir.control_sock());
            if let Err(e) = st.save(&dir.state_json()) {
                tracing::warn!("recording the failed resume: {e}");
            }
        }
        // Nothing may stay behind after a failed `up`.
        _ => {
            if let Err(e) = std::fs::remove_dir_all(&dir.dir) {
                tracing::warn!("removing {}: {e}", dir.dir.display());
            }
        }
    }
    report(&UpReport::Failed { message, log_tail });
}

fn prepare_broker(
    home: &Path,
    dir: &InstanceDir,
) -> Result<std::sync::Arc<mvm_broker::Broker>, SupervisorError> {
    let st = InstanceState::load(&dir.state_json())?;
    let config = crate::broker::load(home, &st.persist.broker).map_err(SupervisorError::Broker)?;
    let broker =
        mvm_broker::Broker::new(config).map_err(|e| SupervisorError::Broker(e.to_string()))?;
    Ok(std::sync::Arc::new(broker))
}

async fn start(
    home: &Path,
    dir: &InstanceDir,
    broker: std::sync::Arc<mvm_broker::Broker>,
) -> Result<
    (
        tokio::net::UnixListener,
        boot::Started,
        Option<Trail>,
        udp_relay::Relays,
    ),
    SupervisorError,
> {
    let mut st = InstanceState::load(&dir.state_json())?;
    st.supervisor = Some(ProcessRef::current());
    // A resume is starting from here (a failure puts `paused` back).
    st.status = Status::Starting;
    st.save(&dir.state_json())?;
    // Before the working directory changes (a relative MVM_HOME) and
    // before boot, so an unusable audit trail costs no boot.
    let audit = Trail::open(home, &st)?;
    let abs_home = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    let broker_start = boot::BrokerStart {
        broker: broker.clone(),
        ctx: broker::Context {
            egress_log: std::path::absolute(dir.egress_log()).unwrap_or_else(|_| dir.egress_log()),
            home: abs_home,
            trail: audit.as_ref().map(|(t, _)| t.clone()),
            max_rate: st.persist.broker.max_rate,
        },
    };
    // QEMU gets socket paths relative to the instance directory, so they
    // stay within the 108-byte unix socket limit however deep MVM_HOME is.
    std::env::set_current_dir(&dir.dir).map_err(|source| SupervisorError::Io {
        what: format!("entering {}", dir.dir.display()),
        source,
    })?;
    // Bound before boot so a failure here costs no boot; clients only
    // connect once the record says ready.
    if st.start == crate::state::Start::Resume {
        // Left by the supervisor that paused the instance.
        let _ = std::fs::remove_file(dir.control_sock());
    }
    let listener = bind_control(dir)?;
    let udp = udp_relay::bind(st.persist.vm.network.udp_relays())?;
    let mut started = boot::start(home, dir, &mut st, broker_start).await?;
    // The agent is up, so its relays listen; ready means they carry.
    let relays = match udp_relay::start(udp) {
        Ok(relays) => relays,
        Err(e) => {
            started.machine.kill().await;
            return Err(e);
        }
    };
    // Before the record says ready: clients connect only after that, so
    // nothing of this instance can be recorded ahead of its `up`.
    if let Some((trail, info)) = &audit
        && let Err(e) = trail.up(&st, info).await
    {
        started.machine.kill().await;
        return Err(e);
    }
    st.status = Status::Ready;
    st.ready_unix_ms = Some(now_unix_ms());
    st.timings = started.timings;
    // The lease runs from each start: a paused instance does not age.
    if let Some(lease) = &mut st.lease {
        lease.expires_unix_ms = st.ready_unix_ms.map(|t| t.saturating_add(lease.timeout_ms));
    }
    if let Err(e) = st.save(&dir.state_json()) {
        started.machine.kill().await;
        if let Some((trail, _)) = &audit {
            trail
                .crash(format!("start-up failed after the up record: {e}"))
                .await;
        }
        return Err(e.into());
    }
    tracing::info!(?st.timings, started_by = ?st.started_by, "ready");
    if st.start == crate::state::Start::Resume
        && let Err(e) = mvm_snapshot::remove(&crate::snapshot::paused_dir(dir))
    {
        // Harmless: the next pause replaces it.
        tracing::warn!("removing the paused state after the resume: {e}");
    }
    report(&UpReport::Ready {
        timings: started.timings,
        started_by: st.started_by.clone(),
    });
    Ok((listener, started, audit.map(|(trail, _)| trail), relays))
}

fn bind_control(dir: &InstanceDir) -> Result<tokio::net::UnixListener, SupervisorError> {
    let io = |source| SupervisorError::Io {
        what: format!("listening on {}", dir.control_sock().display()),
        source,
    };
    let std_listener = control::bind(&dir.control_sock()).map_err(io)?;
    crate::private::restrict(&dir.control_sock()).map_err(io)?;
    std_listener.set_nonblocking(true).map_err(io)?;
    tokio::net::UnixListener::from_std(std_listener).map_err(io)
}

/// Writes the one report line, then points stdout at /dev/null so the
/// pipe closes and nothing else can ever land in it.
fn report(report: &UpReport) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, report);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto stdout's fd with a valid open fd.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}
