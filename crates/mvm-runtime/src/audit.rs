//! Recording instance events in the host's audit trail (`mvm-audit`).
//!
//! The log lives in `$MVM_HOME/audit`, signed by the host audit key
//! `mvm-audit` in `$MVM_HOME/keys` (made on first use). A [`Recorder`] is
//! opened once per process (a supervisor, `mvmctl build`) and kept: appends
//! take the log's flock, so every supervisor on the host shares one chain.
//! Records hold identifiers, hashes and outcomes, never payload values
//! (docs/plans-and-audit.md, "The audit trail").

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use mvm_audit::{Appended, Event};
use mvm_audit::{AuditError, AuditLog};
use mvm_keys::{KeyError, KeyRing};

use crate::error::RuntimeError;

/// `$MVM_HOME/audit`: the log, its signed head and its lock.
pub fn audit_dir(home: &Path) -> PathBuf {
    home.join("audit")
}

/// `$MVM_HOME/keys`: where the host audit key lives.
pub fn keys_dir(home: &Path) -> PathBuf {
    home.join("keys")
}

/// Why the audit trail could not be opened or written. Causes end the
/// message (and stay the `source`), as in the supervisor's errors, because
/// the supervisor prints Display only.
#[derive(Debug, thiserror::Error)]
pub enum AuditTrailError {
    #[error("the host audit key in {} is unusable: {source}", dir.display())]
    Key {
        dir: PathBuf,
        #[source]
        source: KeyError,
    },

    #[error("the audit trail in {} cannot be written: {source}", dir.display())]
    Log {
        dir: PathBuf,
        #[source]
        source: AuditError,
    },

    #[error(
        "the audit trail in {} cannot be written: {}: {source}\n  hint: the audit dir must be a directory you own and can write (mode 0700)",
        dir.display(), path.display()
    )]
    NotWritable {
        dir: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the audit trail in {}: the append did not finish ({detail})", dir.display())]
    Interrupted { dir: PathBuf, detail: String },
}

impl AuditTrailError {
    /// The directory at fault: the audit dir, or the key dir for [`AuditTrailError::Key`].
    pub fn dir(&self) -> &Path {
        match self {
            AuditTrailError::Key { dir, .. }
            | AuditTrailError::Log { dir, .. }
            | AuditTrailError::NotWritable { dir, .. }
            | AuditTrailError::Interrupted { dir, .. } => dir,
        }
    }

    /// What went wrong, without the "audit trail in DIR" framing.
    fn cause(&self) -> String {
        match self {
            AuditTrailError::Key { source, .. } => format!("the host audit key: {source}"),
            AuditTrailError::Log { source, .. } => source.to_string(),
            AuditTrailError::NotWritable { path, source, .. } => {
                format!("{}: {source}", path.display())
            }
            AuditTrailError::Interrupted { detail, .. } => {
                format!("the append did not finish ({detail})")
            }
        }
    }
}

/// For callers in `RuntimeError` code (admission at `up`): the variant
/// that says nothing unaudited runs, with its hint.
impl From<AuditTrailError> for RuntimeError {
    fn from(e: AuditTrailError) -> RuntimeError {
        RuntimeError::Audit {
            dir: e.dir().to_path_buf(),
            detail: e.cause(),
        }
    }
}

/// The host's audit log, opened with the host audit key. Cheap to clone
/// (one shared log), so async tasks can each hold one.
#[derive(Debug, Clone)]
pub struct Recorder {
    log: Arc<AuditLog>,
}

impl Recorder {
    /// Loads (or makes) the host audit key and opens `$MVM_HOME/audit`,
    /// checking up front that the log can be written there, so a broken
    /// audit dir is reported before anything is started rather than at the
    /// first record.
    pub fn open(home: &Path) -> Result<Recorder, AuditTrailError> {
        // The supervisor changes its working directory after opening; a
        // relative MVM_HOME must keep naming the same place.
        let home = std::path::absolute(home).map_err(|source| AuditTrailError::NotWritable {
            dir: audit_dir(home),
            path: home.to_path_buf(),
            source,
        })?;
        let keys = keys_dir(&home);
        let signer = KeyRing::new(&keys)
            .and_then(|ring| ring.host_audit_key())
            .map_err(|source| AuditTrailError::Key {
                dir: keys.clone(),
                source,
            })?;
        let dir = audit_dir(&home);
        let log = AuditLog::open(&dir, signer.signing_key().clone()).map_err(|source| {
            AuditTrailError::Log {
                dir: dir.clone(),
                source,
            }
        })?;
        probe(&dir)?;
        Ok(Recorder { log: Arc::new(log) })
    }

    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// Appends one record (blocking: flock, write, fdatasync, head rename).
    /// From async code use [`Recorder::record_async`].
    pub fn record(
        &self,
        instance: Option<&str>,
        event: &Event,
    ) -> Result<Appended, AuditTrailError> {
        self.log
            .append(instance, event)
            .map_err(|source| AuditTrailError::Log {
                dir: self.dir().to_path_buf(),
                source,
            })
    }

    /// [`Recorder::record`], logging a warning instead of failing: for
    /// records of things that already happened (an invoke that ran, a guest
    /// that stopped), where refusing would undo nothing.
    pub fn record_or_warn(&self, instance: Option<&str>, event: &Event) -> Option<Appended> {
        warn_on_error(instance, event, self.record(instance, event))
    }

    /// [`Recorder::record`] on tokio's blocking pool, so a slow disk holds
    /// up only the caller, never the thread serving everyone else.
    pub async fn record_async(
        &self,
        instance: Option<&str>,
        event: Event,
    ) -> Result<Appended, AuditTrailError> {
        let recorder = self.clone();
        let instance = instance.map(str::to_string);
        tokio::task::spawn_blocking(move || recorder.record(instance.as_deref(), &event))
            .await
            .map_err(|e| AuditTrailError::Interrupted {
                dir: self.dir().to_path_buf(),
                detail: e.to_string(),
            })?
    }

    /// [`Recorder::record_async`], logging a warning instead of failing.
    pub async fn record_or_warn_async(
        &self,
        instance: Option<&str>,
        event: Event,
    ) -> Option<Appended> {
        let kind = kind(&event);
        let result = self.record_async(instance, event).await;
        match result {
            Ok(appended) => Some(appended),
            Err(e) => {
                warn(instance, &kind, &e);
                None
            }
        }
    }
}

fn warn_on_error(
    instance: Option<&str>,
    event: &Event,
    result: Result<Appended, AuditTrailError>,
) -> Option<Appended> {
    result.map_err(|e| warn(instance, &kind(event), &e)).ok()
}

fn warn(instance: Option<&str>, kind: &str, e: &AuditTrailError) {
    tracing::warn!(
        instance = instance.unwrap_or("-"),
        "the `{kind}` event was not recorded in the audit trail: {e}"
    );
}

/// The record's `event` word (`up`, `invoke`, ...), for messages.
fn kind(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("event")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Opens (creating, 0600) the lock file every append opens read-write: the
/// first thing an append needs, so if this works the dir is writable.
fn probe(dir: &Path) -> Result<(), AuditTrailError> {
    let path = dir.join("lock");
    // Never truncated: the lock file's content is irrelevant, only its lock.
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map(drop)
        .map_err(|source| AuditTrailError::NotWritable {
            dir: dir.to_path_buf(),
            path,
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The host audit key's public half, as a verifier would load it.
    fn public(home: &Path) -> mvm_keys::PublicKey {
        KeyRing::new(&keys_dir(home))
            .unwrap()
            .public(mvm_keys::AUDIT_KEY)
            .unwrap()
    }

    fn events() -> Vec<(Option<&'static str>, Event)> {
        vec![
            (
                None,
                Event::Build {
                    image_id: "i".repeat(64),
                    ir_hash: "h".repeat(64),
                    workload_id: "hello".into(),
                    inputs_sha256: "s".repeat(64),
                },
            ),
            (
                Some("web"),
                Event::Up {
                    image_id: "i".repeat(64),
                    ir_hash: "h".repeat(64),
                    plan_sha256: None,
                    accel: "tcg".into(),
                },
            ),
            (
                Some("web"),
                Event::Invoke {
                    entrypoint: "greet".into(),
                    ok: true,
                    duration_ms: 41,
                },
            ),
            (
                Some("web"),
                Event::exec(&["ls".into(), "/".into()], Some(0), 7),
            ),
            (Some("web"), Event::Down {}),
        ]
    }

    /// Records land in order with their instance, the chain and the signed
    /// head verify with the host audit key, and a second Recorder (another
    /// supervisor) reuses that key and extends the same chain.
    #[tokio::test]
    async fn records_verify_and_read_back_in_order() {
        let home = tempfile::tempdir().unwrap();
        let first = Recorder::open(home.path()).unwrap();
        let all = events();
        for (instance, event) in &all[..2] {
            first.record(*instance, event).unwrap();
        }
        let second = Recorder::open(home.path()).unwrap();
        for (instance, event) in &all[2..] {
            second.record_async(*instance, event.clone()).await.unwrap();
        }

        let dir = audit_dir(home.path());
        let report = mvm_audit::verify(&dir, &public(home.path()).key).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.records, all.len());
        let records = mvm_audit::read(&dir).unwrap();
        let got: Vec<_> = records
            .iter()
            .map(|r| (r.seq, r.instance.as_deref(), r.typed().unwrap()))
            .collect();
        let want: Vec<_> = all
            .into_iter()
            .enumerate()
            .map(|(i, (instance, event))| (i as u64 + 1, instance, event))
            .collect();
        assert_eq!(got, want);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    /// Tampering after recording is caught: the test above is not passing
    /// because verify accepts anything.
    #[test]
    fn an_edited_record_fails_verification() {
        let home = tempfile::tempdir().unwrap();
        let recorder = Recorder::open(home.path()).unwrap();
        for (instance, event) in events() {
            recorder.record(instance, &event).unwrap();
        }
        let log = audit_dir(home.path()).join("log.jsonl");
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::write(&log, text.replace(r#""ok":true"#, r#""ok":false"#)).unwrap();
        let report = mvm_audit::verify(&audit_dir(home.path()), &public(home.path()).key).unwrap();
        assert!(!report.ok());
    }

    /// Concurrent supervisors each hold a Recorder; no record is lost.
    #[test]
    fn concurrent_recorders_share_one_chain() {
        let home = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let recorder = Recorder::open(home.path()).unwrap();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let event = Event::Invoke {
                            entrypoint: format!("e{i}"),
                            ok: true,
                            duration_ms: i,
                        };
                        recorder.record(Some(&format!("vm{t}")), &event).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let report = mvm_audit::verify(&audit_dir(home.path()), &public(home.path()).key).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.records, 40);
    }

    /// Something in the way of the audit dir: open fails and says where.
    /// (Mode bits cannot make a directory unwritable here: the suite runs
    /// as root, so the obstacles are of the kind root cannot write through.)
    #[test]
    fn an_unusable_audit_dir_fails_open_naming_it() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(audit_dir(home.path()), "not a directory").unwrap();
        let err = Recorder::open(home.path()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, AuditTrailError::Log { .. }), "{err:?}");
        assert!(
            text.contains(&audit_dir(home.path()).display().to_string()),
            "{text}"
        );

        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(audit_dir(home.path()).join("lock")).unwrap();
        let err = Recorder::open(home.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, AuditTrailError::NotWritable { .. }),
            "{err:?}"
        );
        assert!(
            text.contains("audit/lock") && text.contains("hint:"),
            "{text}"
        );
    }

    /// A log that cannot be appended to fails the record (not silently),
    /// naming the file; the _or_warn forms return None instead.
    #[tokio::test]
    async fn a_failed_append_is_an_error_naming_the_log() {
        let home = tempfile::tempdir().unwrap();
        let recorder = Recorder::open(home.path()).unwrap();
        std::fs::create_dir(audit_dir(home.path()).join("log.jsonl")).unwrap();
        let err = recorder.record(Some("web"), &Event::Down {}).unwrap_err();
        assert!(err.to_string().contains("log.jsonl"), "{err}");
        let err = recorder
            .record_async(Some("web"), Event::Down {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("log.jsonl"), "{err}");
        assert!(recorder.record_or_warn(None, &Event::Down {}).is_none());
        assert!(
            recorder
                .record_or_warn_async(None, Event::Down {})
                .await
                .is_none()
        );
    }

    /// A broken key ring is reported as the key's problem.
    #[test]
    fn an_unusable_key_dir_fails_open_naming_it() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(keys_dir(home.path()), "not a directory").unwrap();
        let err = Recorder::open(home.path()).unwrap_err();
        assert!(matches!(err, AuditTrailError::Key { .. }), "{err:?}");
        assert!(err.to_string().contains("keys"), "{err}");
    }

    #[test]
    fn event_words_for_messages() {
        assert_eq!(kind(&Event::Down {}), "down");
        assert_eq!(kind(&Event::Crash { detail: "x".into() }), "crash");
    }

    /// Admission code (RuntimeError) gets the audit variant, naming the dir.
    #[test]
    fn converts_to_the_runtime_audit_error() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(audit_dir(home.path()).join("lock")).unwrap();
        let err = RuntimeError::from(Recorder::open(home.path()).unwrap_err());
        let RuntimeError::Audit { dir, detail } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(dir, &audit_dir(home.path()));
        assert!(detail.contains("audit/lock"), "{detail}");
    }
}
