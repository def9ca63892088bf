//! `mvmctl down`: stop an instance (before_stop, guest power-off) and
//! remove everything it left on the host. Works on dead instances too.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::control::{self, Event, Request};
use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::name::InstanceName;
use crate::state::{self, InstanceState, Observed, Status};

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
    // Not while a resume of it is starting (it holds the lock until its
    // supervisor reported); an unusable lock does not stop the removal.
    let _lock = crate::lifecycle::lock(&dir, true).ok();
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
        if needs_down_record(st, before_stop.is_some()) {
            record_down(home, name);
        }
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

/// Whether `down` itself writes the instance's `down` record: auditing is
/// on, the instance got as far as its `up` record (the supervisor writes
/// that before the record says ready), and the supervisor did not answer
/// the stop (it writes `down` before answering). So a crashed instance
/// reads `up`, `crash`, `down`. A supervisor that recorded the stop but
/// whose answer was lost gives a second `down`: an extra record, never a
/// missing one.
fn needs_down_record(st: &InstanceState, supervisor_stopped_it: bool) -> bool {
    st.audit.is_some() && st.status != Status::Starting && !supervisor_stopped_it
}

/// The instance's processes are gone already, so a failure to record only
/// warns: refusing would leave a dead instance nobody can remove.
fn record_down(home: &Path, name: &InstanceName) {
    let event = crate::audit::Event::Down {};
    match crate::audit::Recorder::open(home) {
        Ok(recorder) => {
            recorder.record_or_warn(Some(name.as_str()), &event);
        }
        Err(e) => tracing::warn!(
            instance = name.as_str(),
            "the `down` event was not recorded in the audit trail: {e}"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Event as AuditEvent, audit_dir};

    /// A record of an instance whose supervisor and QEMU are gone.
    fn dead_instance(home: &Path, name: &str, status: &str, audit: bool) -> InstanceName {
        let name = InstanceName::parse(name).unwrap();
        let dir = InstanceDir::new(home, name.clone());
        std::fs::create_dir_all(&dir.dir).unwrap();
        let gone = serde_json::json!({"pid": i32::MAX, "start_ticks": 0});
        let record = serde_json::json!({
            "name": name.as_str(), "status": status, "created_unix_ms": 1,
            "ready_unix_ms": 2, "ready_timeout_ms": 30000,
            "image": {"id": "abc", "name": "hello", "rootfs": "/r", "launch_json": "/l"},
            "supervisor": gone, "qemu": gone,
            "timings": {"boot_ms": 0, "configure_ms": 0, "before_start_ms": 0,
                        "after_start_ms": 0, "service_ms": 0, "total_ms": 0},
            "persist": {
                "vm": {"kernel": "/k", "initrd": "/i", "cmdline": "c", "vcpus": 1,
                       "memory_mb": 256, "rootfs": "/r", "scratch": "s.img",
                       "scratch_mb": 512, "network": "none", "accel": "tcg"},
                "guest": {"env": {}, "secret_tokens": {}, "service": null}
            },
            "audit": audit.then(|| serde_json::json!({"ir_hash": "h", "plan_sha256": null})),
        });
        std::fs::write(dir.state_json(), record.to_string()).unwrap();
        // The record must really be one this crate reads, or the test proves nothing.
        InstanceState::load(&dir.state_json()).unwrap();
        name
    }

    fn recorded(home: &Path) -> Vec<(Option<String>, AuditEvent)> {
        mvm_audit::read(&audit_dir(home))
            .unwrap()
            .into_iter()
            .map(|r| (r.instance.clone(), r.typed().unwrap()))
            .collect()
    }

    /// No supervisor was left to record the end, so down does, once.
    #[test]
    fn down_of_a_dead_audited_instance_records_down() {
        let home = tempfile::tempdir().unwrap();
        let name = dead_instance(home.path(), "web", "ready", true);
        let out = down(home.path(), &name, Duration::from_millis(10)).unwrap();
        assert_eq!(out.was, "dead");
        assert_eq!(
            recorded(home.path()),
            vec![(Some("web".to_string()), AuditEvent::Down {})]
        );
    }

    /// Auditing off writes nothing (not even the audit dir or key); an
    /// instance that never got its `up` record gets no `down` either.
    #[test]
    fn down_writes_nothing_when_not_audited_or_never_up() {
        let home = tempfile::tempdir().unwrap();
        let name = dead_instance(home.path(), "quiet", "ready", false);
        down(home.path(), &name, Duration::from_millis(10)).unwrap();
        assert!(!audit_dir(home.path()).exists());
        assert!(!crate::audit::keys_dir(home.path()).exists());

        let name = dead_instance(home.path(), "early", "starting", true);
        down(home.path(), &name, Duration::from_millis(10)).unwrap();
        assert!(!audit_dir(home.path()).exists());
    }

    /// An unusable audit trail does not keep a dead instance from going.
    #[test]
    fn an_unusable_audit_trail_does_not_block_down() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(audit_dir(home.path()), "in the way").unwrap();
        let name = dead_instance(home.path(), "web", "ready", true);
        down(home.path(), &name, Duration::from_millis(10)).unwrap();
        assert!(!InstanceDir::new(home.path(), name).dir.exists());
    }
}
