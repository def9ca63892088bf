//! `state.json`: the record of one instance, written by `up` and then only
//! by that instance's supervisor, read by every other command.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::home::{InstanceDir, instances_root};
use crate::name::InstanceName;
use crate::persist::Persisted;
use crate::process::ProcessRef;

/// Lifecycle stage as recorded by the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// QEMU booting, or hooks and the readiness probe running.
    Starting,
    /// The after_start probe passed; invokes are accepted.
    Ready,
    /// `down` is running before_stop and shutting the guest down.
    Stopping,
    /// Pausing: the supervisor is saving the guest's state to `paused/`.
    Pausing,
    /// The guest's state is saved in `paused/` and nothing of the instance
    /// runs; `mvmctl resume` brings it back.
    Paused,
}

/// How the supervisor brings the instance up; written by whoever starts
/// it (`up`, `resume`), read once by the supervisor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Start {
    /// Boot the kernel (`up --cold`, or nothing to restore).
    #[default]
    Boot,
    /// Boot, and leave a template snapshot behind for later `up`s.
    BootAndCapture {
        template: crate::snapshot::TemplateSlot,
    },
    /// Restore the image's template snapshot; anything unusable about it
    /// falls back to `BootAndCapture` with the reason in the log.
    Template {
        template: crate::snapshot::TemplateSlot,
    },
    /// Bring back this instance's own paused state (`mvmctl resume`).
    Resume,
    /// Restore a tagged snapshot (`up --from-snapshot TAG`).
    Snapshot { tag: String },
}

impl Start {
    /// What `ps` and `up` say about it.
    pub fn describe(&self) -> String {
        match self {
            Start::Boot | Start::BootAndCapture { .. } => "boot".into(),
            Start::Template { .. } => "template".into(),
            Start::Resume => "resume".into(),
            Start::Snapshot { tag } => format!("snapshot {tag}"),
        }
    }
}

/// A time limit on an instance (`Sandbox.create(timeout=...)`), kept by
/// its supervisor so it holds when whoever asked for it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// How long the instance may run from each start (boot, restore,
    /// resume); a paused instance does not age.
    pub timeout_ms: u64,
    pub on_expiry: LeaseAction,
    /// When the running instance expires; set by the supervisor at each
    /// start and each renewal.
    #[serde(default)]
    pub expires_unix_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseAction {
    /// Stop it like `mvmctl down` (before_stop runs).
    #[default]
    Kill,
    /// Pause it like `mvmctl pause`.
    Pause,
}

impl LeaseAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseAction::Kill => "kill",
            LeaseAction::Pause => "pause",
        }
    }
}

/// The image an instance runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub id: String,
    /// The workload name the image was built for.
    pub name: String,
    pub rootfs: PathBuf,
    /// The image's `image.lock`; images made outside the store (test
    /// fixtures) have none, and no plan can name their digest.
    #[serde(default)]
    pub lock: Option<PathBuf>,
    pub launch_json: PathBuf,
}

/// What the audit trail says about an instance; `None` in the record when
/// the policy turned auditing off (or the caller admitted nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditInfo {
    pub ir_hash: String,
    /// The admitted plan's SHA-256 (of its envelope file), if up had one.
    pub plan_sha256: Option<String>,
}

/// Wall-clock milliseconds of each start-up phase, measured on the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// QEMU started → the agent's Hello arrived (kernel boot + agent start).
    pub boot_ms: u64,
    /// Configure round trip (env into the guest).
    pub configure_ms: u64,
    pub before_start_ms: u64,
    /// First after_start attempt → first exit 0.
    pub after_start_ms: u64,
    /// Starting the command entrypoint service, when there is one.
    pub service_ms: u64,
    /// Saving the image's template snapshot, on the boot that made it.
    #[serde(default)]
    pub capture_ms: u64,
    /// QEMU started → ready.
    pub total_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    pub name: InstanceName,
    pub status: Status,
    pub created_unix_ms: u64,
    pub ready_unix_ms: Option<u64>,
    /// `--timeout-ready`: QEMU start → ready, enforced by the supervisor.
    pub ready_timeout_ms: u64,
    pub image: ImageRef,
    pub supervisor: Option<ProcessRef>,
    pub qemu: Option<ProcessRef>,
    pub timings: Timings,
    pub persist: Persisted,
    /// Whether (and with what) this instance's events are audited.
    #[serde(default)]
    pub audit: Option<AuditInfo>,
    /// How the supervisor starts (or last started) the instance.
    #[serde(default)]
    pub start: Start,
    /// How the last start went: `boot`, `template`, `snapshot TAG`,
    /// `resume`, or `boot (template unusable: ...)`.
    #[serde(default)]
    pub started_by: Option<String>,
    /// The instance's time limit, if it has one.
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// What `ps` shows: the record checked against the processes it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    Starting,
    Running,
    Stopping,
    Pausing,
    /// Saved to disk; nothing runs (`mvmctl resume` brings it back).
    Paused,
    /// QEMU or the supervisor is gone while the record says it should run.
    Dead,
}

impl Observed {
    pub fn as_str(&self) -> &'static str {
        match self {
            Observed::Starting => "starting",
            Observed::Running => "running",
            Observed::Stopping => "stopping",
            Observed::Pausing => "pausing",
            Observed::Paused => "paused",
            Observed::Dead => "dead",
        }
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl InstanceState {
    /// Guest ports published on the host (none without a network).
    pub fn published(&self) -> &[crate::network::Published] {
        match &self.persist.vm.network {
            crate::network::NetworkConfig::None => &[],
            crate::network::NetworkConfig::User { published, .. } => published,
        }
    }

    pub fn load(path: &Path) -> Result<InstanceState, RuntimeError> {
        let text = fs::read_to_string(path).map_err(|source| RuntimeError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| RuntimeError::CorruptState {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// Writes via a temporary file and rename, so readers never see half a record.
    pub fn save(&self, path: &Path) -> Result<(), RuntimeError> {
        let io = |source| RuntimeError::Io {
            what: format!("writing {}", path.display()),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let mut f = crate::private::create_file(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("state serializes"))
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)
    }

    /// The record checked against reality: a ready instance whose QEMU
    /// died is dead, not running; so is one whose supervisor died, because
    /// nothing can talk to its guest any more.
    pub fn observe(&self) -> Observed {
        let alive = |p: &Option<ProcessRef>| p.as_ref().is_some_and(ProcessRef::is_alive);
        let supervisor = alive(&self.supervisor);
        match self.status {
            Status::Starting if supervisor && (self.qemu.is_none() || alive(&self.qemu)) => {
                Observed::Starting
            }
            Status::Ready if supervisor && alive(&self.qemu) => Observed::Running,
            Status::Stopping if supervisor => Observed::Stopping,
            Status::Pausing if supervisor => Observed::Pausing,
            // Paused means saved: it is paused whatever runs (a resume's
            // supervisor sets Starting before it starts anything).
            Status::Paused => Observed::Paused,
            _ => Observed::Dead,
        }
    }
}

/// An instance directory and its record, or why the record is unreadable.
pub type Listed = (InstanceDir, Result<InstanceState, RuntimeError>);

/// Every instance directory under `home`, sorted by name, with its record
/// (or why the record could not be read).
pub fn list(home: &Path) -> Result<Vec<Listed>, RuntimeError> {
    let root = instances_root(home);
    let entries = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(RuntimeError::Io {
                what: format!("listing {}", root.display()),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        // Directories whose name is not an instance name are not ours.
        let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| InstanceName::parse(n).ok())
        else {
            continue;
        };
        if !entry.path().is_dir() {
            continue;
        }
        let dir = InstanceDir::new(home, name);
        let state = InstanceState::load(&dir.state_json());
        out.push((dir, state));
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::persist::{GuestConfig, NetworkConfig, VmConfig};

    pub(crate) fn sample(name: &str) -> InstanceState {
        InstanceState {
            name: InstanceName::parse(name).unwrap(),
            status: Status::Ready,
            created_unix_ms: 1,
            ready_unix_ms: Some(2),
            ready_timeout_ms: 30_000,
            image: ImageRef {
                id: "abc".into(),
                name: "hello".into(),
                rootfs: "/images/abc/rootfs.ext4".into(),
                lock: None,
                launch_json: "/images/abc/launch.json".into(),
            },
            supervisor: Some(ProcessRef::current()),
            qemu: Some(ProcessRef::current()),
            timings: Timings::default(),
            persist: Persisted {
                broker: Default::default(),
                vm: VmConfig {
                    kernel: "/k".into(),
                    initrd: "/i".into(),
                    cmdline: "console=ttyS0".into(),
                    vcpus: 1,
                    memory_mb: 256,
                    rootfs: "/images/abc/rootfs.ext4".into(),
                    scratch: "scratch.img".into(),
                    scratch_mb: 512,
                    network: NetworkConfig::None,
                    accel: mvm_vmm::Accel::Tcg,
                },
                guest: GuestConfig::default(),
            },
            audit: None,
            start: Start::Boot,
            started_by: None,
            lease: None,
        }
    }

    #[test]
    fn save_load_round_trip_and_listing() {
        let home = tempfile::tempdir().unwrap();
        let dir = InstanceDir::new(home.path(), InstanceName::parse("one").unwrap());
        fs::create_dir_all(&dir.dir).unwrap();
        let st = sample("one");
        st.save(&dir.state_json()).unwrap();
        assert_eq!(InstanceState::load(&dir.state_json()).unwrap(), st);
        // A stray directory that is not an instance name is ignored.
        fs::create_dir_all(instances_root(home.path()).join("Not_An_Instance")).unwrap();
        let listed = list(home.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].1.as_ref().unwrap(), &st);
    }

    /// The accelerator is typed: state.json keeps "tcg"/"kvm", and another
    /// word is refused when the record is read, naming the file.
    #[test]
    fn an_unknown_accelerator_in_a_record_is_refused_on_load() {
        let home = tempfile::tempdir().unwrap();
        let p = home.path().join("state.json");
        sample("one").save(&p).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains(r#""accel": "tcg""#), "{text}");
        fs::write(&p, text.replace(r#""accel": "tcg""#, r#""accel": "hvf""#)).unwrap();
        let err = InstanceState::load(&p).unwrap_err().to_string();
        assert!(err.contains("state.json") && err.contains("hvf"), "{err}");
    }

    #[test]
    fn corrupt_record_names_the_file() {
        let home = tempfile::tempdir().unwrap();
        let p = home.path().join("state.json");
        fs::write(&p, "{not json").unwrap();
        let err = InstanceState::load(&p).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }

    #[test]
    fn dead_qemu_is_observed_dead() {
        let mut st = sample("one");
        assert_eq!(st.observe(), Observed::Running);
        st.qemu = Some(ProcessRef {
            pid: i32::MAX,
            start_ticks: 0,
        });
        assert_eq!(st.observe(), Observed::Dead);
        st.status = Status::Starting;
        st.qemu = None;
        assert_eq!(st.observe(), Observed::Starting);
        st.supervisor = Some(ProcessRef {
            pid: i32::MAX,
            start_ticks: 0,
        });
        assert_eq!(st.observe(), Observed::Dead);
    }
}
