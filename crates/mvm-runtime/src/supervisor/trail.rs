//! What the supervisor writes to the host's audit trail, when the instance
//! record asks for it (`state.audit` is `Some`; `None` writes nothing).
//!
//! - `up`: once the guest is ready, before the record says so (so no client
//!   can connect, and no invoke be recorded, before it); failing to write
//!   it fails the start-up.
//! - `invoke`, `exec`: one per client request, written before the client
//!   gets its final answer (see [`Trail::invoke`]); a failure is a warning.
//! - `crash`: QEMU exited on its own, or start-up failed after `up`.
//! - `down`: after a stop request stopped the guest.

use std::time::Duration;

use crate::audit::{Event as AuditEvent, Recorder};
use crate::control::Event;
use crate::state::{AuditInfo, InstanceState};

use super::error::SupervisorError;

/// The supervisor's recorder and what its records say about the instance.
#[derive(Debug, Clone)]
pub struct Trail {
    recorder: Recorder,
    instance: String,
    /// What an invoke that names no entrypoint runs (the agent's rule).
    primary: String,
}

impl Trail {
    /// `None` when auditing is off for the instance. Opened before boot, so
    /// an unusable audit dir or key costs no boot.
    pub fn open(
        home: &std::path::Path,
        st: &InstanceState,
    ) -> Result<Option<(Trail, AuditInfo)>, SupervisorError> {
        let Some(info) = st.audit.clone() else {
            return Ok(None);
        };
        let primary = crate::launch::load(&st.image.launch_json)?.primary_entrypoint;
        let recorder = Recorder::open(home)?;
        Ok(Some((
            Trail {
                recorder,
                instance: st.name.to_string(),
                primary,
            },
            info,
        )))
    }

    fn instance(&self) -> Option<&str> {
        Some(&self.instance)
    }

    /// The first record of the instance. An operator who asked for an
    /// audit trail must not get an unaudited instance, so this one fails.
    pub async fn up(&self, st: &InstanceState, info: &AuditInfo) -> Result<(), SupervisorError> {
        self.up_record(&st.image.id, st.persist.vm.accel, info)
            .await
    }

    async fn up_record(
        &self,
        image_id: &str,
        accel: mvm_vmm::Accel,
        info: &AuditInfo,
    ) -> Result<(), SupervisorError> {
        self.recorder
            .record_async(self.instance(), up_event(image_id, accel, info))
            .await?;
        Ok(())
    }

    /// Written after the guest answered and before the client hears it: a
    /// client that saw an outcome can count on its record. That costs the
    /// client one append (p50 ~0.8 ms, on the blocking pool, so other
    /// clients are not held up) and nothing more, which is small next to an
    /// invoke's round trip; `duration_ms` is the guest call alone.
    pub async fn invoke(
        &self,
        entrypoint: Option<&str>,
        outcome: &Result<Event, SupervisorError>,
        duration: Duration,
    ) {
        let entrypoint = entrypoint.unwrap_or(&self.primary).to_string();
        let event = invoke_event(entrypoint, outcome, duration);
        self.recorder
            .record_or_warn_async(self.instance(), event)
            .await;
    }

    /// As [`Trail::invoke`]: written before the client gets the exit (or
    /// the failure), which is its final answer. `last` is that final event;
    /// `None` when the command could not be started.
    pub async fn exec(&self, argv: &[String], last: Option<&Event>, duration: Duration) {
        let event = exec_event(argv, last, duration);
        self.recorder
            .record_or_warn_async(self.instance(), event)
            .await;
    }

    /// One request the host made for the guest (a release when a secret
    /// went into it); a failure to write it is a warning, as for exec.
    pub async fn mediated(&self, record: &mvm_broker::Record) {
        let event = AuditEvent::mediated(mvm_audit::MediatedRequest {
            kind: record.kind.to_string(),
            destination: record.destination.clone().unwrap_or_default(),
            method: record.method.clone().unwrap_or_default(),
            secrets: record.secrets.clone(),
            refused: record.decision != "allowed",
            status: record.status,
            detail: record.reason.clone(),
            bytes_sent: record.bytes_sent,
            bytes_received: record.bytes_received,
            duration_ms: record.duration_ms(),
        });
        self.recorder
            .record_or_warn_async(self.instance(), event)
            .await;
    }

    pub async fn crash(&self, detail: String) {
        self.recorder
            .record_or_warn_async(self.instance(), AuditEvent::Crash { detail })
            .await;
    }

    /// The guest has stopped already: failing now would undo nothing.
    pub async fn down(&self) {
        self.recorder
            .record_or_warn_async(self.instance(), AuditEvent::Down {})
            .await;
    }
}

fn up_event(image_id: &str, accel: mvm_vmm::Accel, info: &AuditInfo) -> AuditEvent {
    AuditEvent::Up {
        image_id: image_id.to_string(),
        ir_hash: info.ir_hash.clone(),
        plan_sha256: info.plan_sha256.clone(),
        accel: accel.as_str().to_string(),
    }
}

/// `ok` when the guest returned a value; an exception the function raised
/// and a call that never reached it are both not ok. Never the arguments
/// or the value.
fn invoke_event(
    entrypoint: String,
    outcome: &Result<Event, SupervisorError>,
    duration: Duration,
) -> AuditEvent {
    AuditEvent::Invoke {
        entrypoint,
        ok: matches!(outcome, Ok(Event::InvokeResult { .. })),
        duration_ms: millis(duration),
    }
}

/// The command's own exit code; `None` when it has none: killed by a
/// signal, timed out, or it could not be run or followed to its end. Never
/// its output or env, and of the argv only argv[0], the count and a hash
/// (arguments may carry credentials; the log is meant to leave the host).
fn exec_event(argv: &[String], last: Option<&Event>, duration: Duration) -> AuditEvent {
    let exit_code = match last {
        Some(Event::Exit {
            code,
            timed_out: false,
            ..
        }) => *code,
        _ => None,
    };
    AuditEvent::exec(argv, exit_code, millis(duration))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::control::Bytes;

    /// The record line as the log would hold it.
    fn line(event: &AuditEvent) -> String {
        serde_json::to_string(event).unwrap()
    }

    #[test]
    fn an_invoke_records_whether_the_guest_returned_a_value_but_not_the_value() {
        let d = Duration::from_millis(41);
        let value = Ok(Event::InvokeResult {
            value: json!({"secret-result": 42}),
        });
        let ev = invoke_event("greet".into(), &value, d);
        assert_eq!(
            ev,
            AuditEvent::Invoke {
                entrypoint: "greet".into(),
                ok: true,
                duration_ms: 41
            }
        );
        assert!(!line(&ev).contains("secret-result"));

        let raised = Ok(Event::InvokeError {
            kind: "ValueError".into(),
            message: "secret-message".into(),
            traceback: None,
        });
        let ev = invoke_event("greet".into(), &raised, d);
        assert!(matches!(ev, AuditEvent::Invoke { ok: false, .. }));
        assert!(!line(&ev).contains("secret-message"));

        let failed = Err(SupervisorError::AgentGone);
        assert!(matches!(
            invoke_event("greet".into(), &failed, d),
            AuditEvent::Invoke { ok: false, .. }
        ));
    }

    #[test]
    fn an_exec_records_the_exit_code_only_when_the_command_exited() {
        let d = Duration::from_millis(7);
        let argv = || vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let exit = |code, signal, timed_out| Event::Exit {
            code,
            signal,
            timed_out,
        };
        let code = |last: Option<&Event>| match exec_event(&argv(), last, d) {
            AuditEvent::Exec {
                program,
                argc: 3,
                exit_code,
                duration_ms: 7,
                ..
            } if program == "sh" => exit_code,
            other => panic!("{other:?}"),
        };
        // The arguments themselves never reach the record.
        assert!(!line(&exec_event(&argv(), None, d)).contains("exit 3"));
        assert_eq!(code(Some(&exit(Some(3), None, false))), Some(3));
        assert_eq!(code(Some(&exit(Some(0), None, false))), Some(0));
        assert_eq!(code(Some(&exit(None, Some(9), false))), None);
        assert_eq!(code(Some(&exit(None, Some(9), true))), None);
        let failed = Event::Failed {
            message: "agent gone".into(),
        };
        assert_eq!(code(Some(&failed)), None);
        assert_eq!(code(None), None);
        // Output never reaches a record, whatever event the caller passes.
        let out = Event::Stdout {
            data: Bytes(b"secret-output".to_vec()),
        };
        assert!(!line(&exec_event(&argv(), Some(&out), d)).contains("secret"));
    }

    #[test]
    fn up_names_the_image_ir_plan_and_accelerator() {
        let info = AuditInfo {
            ir_hash: "h".repeat(64),
            plan_sha256: Some("p".repeat(64)),
        };
        assert_eq!(
            up_event("abc", mvm_vmm::Accel::Kvm, &info),
            AuditEvent::Up {
                image_id: "abc".into(),
                ir_hash: "h".repeat(64),
                plan_sha256: Some("p".repeat(64)),
                accel: "kvm".into(),
            }
        );
    }

    fn trail(home: &std::path::Path) -> Trail {
        Trail {
            recorder: Recorder::open(home).unwrap(),
            instance: "web".into(),
            primary: "greet".into(),
        }
    }

    /// The supervisor's records land under the instance's name; an invoke
    /// naming no entrypoint is recorded as the primary one it ran.
    #[tokio::test]
    async fn records_carry_the_instance_and_the_entrypoint_that_ran() {
        let home = tempfile::tempdir().unwrap();
        let t = trail(home.path());
        let info = AuditInfo {
            ir_hash: "h".into(),
            plan_sha256: None,
        };
        t.up_record("abc", mvm_vmm::Accel::Tcg, &info)
            .await
            .unwrap();
        let ok = Ok(Event::InvokeResult { value: json!(1) });
        t.invoke(None, &ok, Duration::from_millis(3)).await;
        t.invoke(Some("other"), &ok, Duration::from_millis(3)).await;
        t.crash("QEMU exited on its own (signal 9)".into()).await;
        t.down().await;
        let records = mvm_audit::read(&crate::audit::audit_dir(home.path())).unwrap();
        assert!(records.iter().all(|r| r.instance.as_deref() == Some("web")));
        let kinds: Vec<_> = records.iter().map(|r| r.typed().unwrap()).collect();
        assert!(matches!(&kinds[0], AuditEvent::Up { image_id, .. } if image_id == "abc"));
        assert!(
            matches!(&kinds[1], AuditEvent::Invoke { entrypoint, .. } if entrypoint == "greet")
        );
        assert!(
            matches!(&kinds[2], AuditEvent::Invoke { entrypoint, .. } if entrypoint == "other")
        );
        assert!(matches!(&kinds[3], AuditEvent::Crash { .. }));
        assert_eq!(kinds[4], AuditEvent::Down {});
        assert_eq!(kinds.len(), 5);
    }

    /// The `up` record is the one that may not fail quietly: it becomes the
    /// start-up error; the later ones only warn.
    #[tokio::test]
    async fn a_failed_up_record_is_a_start_up_error() {
        let home = tempfile::tempdir().unwrap();
        let t = trail(home.path());
        std::fs::create_dir(crate::audit::audit_dir(home.path()).join("log.jsonl")).unwrap();
        let info = AuditInfo {
            ir_hash: "h".into(),
            plan_sha256: None,
        };
        let err = t
            .up_record("abc", mvm_vmm::Accel::Tcg, &info)
            .await
            .unwrap_err();
        assert!(matches!(err, SupervisorError::Audit(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("not starting an unaudited instance: ") && text.contains("log.jsonl"),
            "{text}"
        );
        // Warn-only records return normally.
        t.down().await;
    }
}
