//! `mvmctl down`: stop an instance (before_stop, guest power-off) and
//! remove everything it left on the host. Works on dead instances too.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::control::{self, Event, Request};
use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::name::InstanceName;
use crate::state::{self, InstanceState, Observed};

/// How long the guest gets to power off after before_stop before QEMU is
/// killed: a clean shutdown syncs the scratch disk, which takes a moment
/// under software emulation.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The supervisor needs a moment beyond the guest's grace period to run
/// before_stop and reap QEMU; past this it is killed.
const SUPERVISOR_SLACK: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownOutcome {
    pub name: String,
    /// What the instance was when `down` found it.
    pub was: String,
    /// The outcome of before_stop, when the instance was running.
    pub before_stop: Option<String>,
}

pub fn down(
    home: &Path,
    name: &InstanceName,
    grace: Duration,
) -> Result<DownOutcome, RuntimeError> {
    let dir = InstanceDir::new(home, name.clone());
    if !dir.dir.is_dir() {
        return Err(RuntimeError::NoSuchInstance {
            name: name.to_string(),
        });
    }
    // An unreadable record still gets its directory removed.
    let st = InstanceState::load(&dir.state_json()).ok();
    let observed = st.as_ref().map(InstanceState::observe);
    let before_stop = if matches!(observed, Some(Observed::Running)) {
        stop_via_supervisor(&dir, grace)
    } else {
        None
    };
    if let Some(st) = &st {
        cleanup_processes(st, grace, before_stop.is_some());
    }
    remove_dir(&dir)?;
    Ok(DownOutcome {
        name: name.to_string(),
        was: observed
            .map(|o| o.as_str().to_string())
            .unwrap_or_else(|| "unknown".into()),
        before_stop,
    })
}

/// `down --all`: every instance, continuing past failures.
pub fn down_all(
    home: &Path,
    grace: Duration,
) -> Result<Vec<Result<DownOutcome, RuntimeError>>, RuntimeError> {
    Ok(state::list(home)?
        .into_iter()
        .map(|(dir, _)| down(home, &dir.name, grace))
        .collect())
}

/// Asks the supervisor to stop the guest; returns before_stop's outcome,
/// or `None` when the supervisor could not be reached (cleanup follows anyway).
fn stop_via_supervisor(dir: &InstanceDir, grace: Duration) -> Option<String> {
    let mut stream = control::connect(&dir.control_sock()).ok()?;
    stream
        .set_read_timeout(Some(grace + SUPERVISOR_SLACK))
        .ok()?;
    control::write_frame(
        &mut stream,
        &Request::Stop {
            grace_ms: grace.as_millis() as u64,
        },
    )
    .ok()?;
    match control::read_frame::<Event>(&mut stream) {
        Ok(Some(Event::Stopped { before_stop })) => Some(before_stop),
        Ok(Some(Event::Failed { message })) => Some(format!("stop failed: {message}")),
        _ => None,
    }
}

/// Ends whatever of the instance still runs: the supervisor first (so it
/// does not react to QEMU going away), then QEMU. A supervisor that was
/// asked to stop gets time to finish on its own.
fn cleanup_processes(st: &InstanceState, grace: Duration, stopping: bool) {
    if let Some(sup) = &st.supervisor
        && (!stopping || !sup.wait_gone(grace + SUPERVISOR_SLACK))
    {
        sup.terminate(Duration::from_secs(2));
    }
    if let Some(qemu) = &st.qemu {
        qemu.terminate(grace);
    }
}

fn remove_dir(dir: &InstanceDir) -> Result<(), RuntimeError> {
    match std::fs::remove_dir_all(&dir.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RuntimeError::Io {
            what: format!("removing {}", dir.dir.display()),
            source,
        }),
    }
}
