//! `mvmctl pause`, `resume`, `snapshot` and `up --from-snapshot`: the
//! commands that save a running guest and bring saved ones back. The
//! saving itself is the supervisor's (it owns QEMU); this is the CLI side.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::admission::AdmissionRequest;
use crate::control::{self, Event, Request};
use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::name::InstanceName;
use crate::network::NetworkConfig;
use crate::snapshot::{self, Saved};
use crate::state::{InstanceState, Observed, Start, Status, Timings, now_unix_ms};
use crate::up::{BootAssets, Lost, SupervisorCommand, UpOutcome};

/// Saving a large guest under TCG on a busy host takes a while.
const SAVE_WAIT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PauseOutcome {
    pub name: String,
    /// Bytes the paused state takes on disk.
    pub bytes: u64,
    /// How long the guest was stopped before QEMU exited.
    pub stopped_ms: u64,
    /// The whole pause, as this command saw it.
    pub total_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotOutcome {
    pub name: String,
    pub tag: String,
    pub bytes: u64,
    /// How long the guest was stopped for the snapshot.
    pub stopped_ms: u64,
    pub total_ms: u64,
}

/// Asks a running instance's supervisor for one saving request.
fn ask(
    home: &Path,
    name: &InstanceName,
    request: &Request,
    action: &str,
) -> Result<Event, RuntimeError> {
    let dir = InstanceDir::new(home, name.clone());
    let st = InstanceState::load(&dir.state_json()).map_err(|e| match e {
        RuntimeError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            RuntimeError::NoSuchInstance {
                name: name.to_string(),
            }
        }
        other => other,
    })?;
    let observed = st.observe();
    if observed != Observed::Running {
        return Err(RuntimeError::NotRunning {
            name: name.to_string(),
            status: observed.as_str().into(),
            action: action.into(),
            hint: match observed {
                Observed::Paused => format!("`mvmctl resume {name}` brings it back"),
                _ => format!("`mvmctl ps` shows it; `mvmctl down {name}` removes it"),
            },
        });
    }
    let supervisor_error = |detail: String| RuntimeError::Supervisor {
        name: name.to_string(),
        detail,
    };
    let mut stream = control::connect(&dir.control_sock())
        .map_err(|e| supervisor_error(format!("connecting: {e}")))?;
    stream
        .set_read_timeout(Some(SAVE_WAIT))
        .map_err(|e| supervisor_error(e.to_string()))?;
    control::write_frame(&mut stream, request)?;
    match control::read_frame::<Event>(&mut stream)? {
        Some(Event::Failed { message }) => Err(RuntimeError::Snapshot { detail: message }),
        Some(event) => Ok(event),
        None => Err(supervisor_error(
            "the supervisor closed the connection without an answer".into(),
        )),
    }
}

/// `mvmctl pause NAME`.
pub fn pause(home: &Path, name: &InstanceName) -> Result<PauseOutcome, RuntimeError> {
    let t = Instant::now();
    match ask(home, name, &Request::Pause {}, "be paused")? {
        Event::Paused { bytes, stopped_ms } => Ok(PauseOutcome {
            name: name.to_string(),
            bytes,
            stopped_ms,
            total_ms: t.elapsed().as_millis() as u64,
        }),
        other => Err(unexpected(name, &other)),
    }
}

/// `mvmctl snapshot NAME TAG`.
pub fn snapshot(
    home: &Path,
    name: &InstanceName,
    tag: &str,
) -> Result<SnapshotOutcome, RuntimeError> {
    let tag = snapshot::parse_tag(tag)?;
    if snapshot::tagged_root(home).join(&tag).exists() {
        return Err(RuntimeError::SnapshotExists { tag });
    }
    let t = Instant::now();
    match ask(
        home,
        name,
        &Request::Snapshot { tag: tag.clone() },
        "be snapshotted",
    )? {
        Event::Snapshotted {
            tag,
            bytes,
            stopped_ms,
        } => Ok(SnapshotOutcome {
            name: name.to_string(),
            tag,
            bytes,
            stopped_ms,
            total_ms: t.elapsed().as_millis() as u64,
        }),
        other => Err(unexpected(name, &other)),
    }
}

fn unexpected(name: &InstanceName, event: &Event) -> RuntimeError {
    RuntimeError::Supervisor {
        name: name.to_string(),
        detail: format!("unexpected answer {event:?}"),
    }
}

/// `mvmctl resume NAME`: a new supervisor restores the paused state.
/// Whether `resume` would bring the instance back: it is paused, or a
/// resume's supervisor died part-way (that leaves `starting` behind while
/// the paused state it was restoring is still whole). `prune` leaves
/// these alone.
pub(crate) fn resumable(dir: &InstanceDir, st: &InstanceState) -> bool {
    match st.observe() {
        Observed::Paused => true,
        Observed::Dead => st.start == Start::Resume && snapshot::paused_dir(dir).is_dir(),
        _ => false,
    }
}

pub fn resume(
    home: &Path,
    name: &InstanceName,
    supervisor: &SupervisorCommand,
    ready_timeout: Duration,
) -> Result<UpOutcome, RuntimeError> {
    let dir = InstanceDir::new(home, name.clone());
    if !dir.dir.is_dir() {
        return Err(RuntimeError::NoSuchInstance {
            name: name.to_string(),
        });
    }
    let _lock = lock(&dir, false)?;
    let mut st = InstanceState::load(&dir.state_json())?;
    let observed = st.observe();
    if !resumable(&dir, &st) {
        return Err(RuntimeError::NotRunning {
            name: name.to_string(),
            status: observed.as_str().into(),
            action: "be resumed".into(),
            hint: "only a paused instance resumes; `mvmctl pause NAME` pauses a running one".into(),
        });
    }
    abandon(&st);
    // What runs is what was paused: the sealed record, not the one on
    // disk, which nothing protects while the instance sits paused.
    let key = snapshot::seal_key(home)?;
    let paused = snapshot::Snapshot::open(&snapshot::paused_dir(&dir), &key)
        .map_err(snapshot::snapshot_error)?;
    let saved: Saved = serde_json::from_value(paused.manifest().payload.clone()).map_err(|e| {
        RuntimeError::Snapshot {
            detail: format!("the paused state of `{name}` holds no instance record ({e})"),
        }
    })?;
    if saved.source != name.as_str() {
        return Err(RuntimeError::Snapshot {
            detail: format!(
                "the paused state in `{name}` was taken of `{}`; it is not this instance's",
                saved.source
            ),
        });
    }
    st.image = saved.image;
    st.persist = saved.persist;
    st.persist.vm.scratch = dir.scratch_img();
    st.audit = saved.audit;
    st.start = Start::Resume;
    st.status = Status::Paused;
    st.supervisor = None;
    st.qemu = None;
    st.started_by = None;
    st.ready_timeout_ms = ready_timeout.as_millis() as u64;
    crate::up::launch_supervisor(home, &dir, st, supervisor, Vec::new(), Lost::KeepPaused)
}

/// Held while one command brings the instance back or removes it: two
/// resumes of one paused state would run two guests on one disk, and a
/// `down` racing a resume would remove what it starts. `wait`: block
/// until the other command is done instead of refusing.
pub(crate) fn lock(dir: &InstanceDir, wait: bool) -> Result<std::fs::File, RuntimeError> {
    use std::os::fd::AsRawFd;
    let path = dir.lock_file();
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link someone planted there, never truncating.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
    }
    .map_err(|source| RuntimeError::Io {
        what: format!("opening {}", path.display()),
        source,
    })?;
    let how = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on an fd this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), how) } != 0 {
        return Err(RuntimeError::BadInput {
            detail: format!("`{}` is being resumed by another command", dir.name),
            hint: "wait for it; `mvmctl ps` shows when it runs".into(),
        });
    }
    Ok(file)
}

/// Ends whatever an interrupted resume left running.
fn abandon(st: &InstanceState) {
    for p in [&st.supervisor, &st.qemu].into_iter().flatten() {
        if p.is_alive() {
            p.terminate(Duration::from_secs(2));
        }
    }
}

/// After a resume whose supervisor vanished: stop what it left and put
/// the record back to `paused`.
pub(crate) fn abandon_resume(dir: &InstanceDir) {
    if let Ok(mut st) = InstanceState::load(&dir.state_json()) {
        abandon(&st);
        st.status = Status::Paused;
        st.supervisor = None;
        st.qemu = None;
        if let Err(e) = st.save(&dir.state_json()) {
            tracing::warn!("recording the failed resume: {e}");
        }
    }
}

/// What `up --from-snapshot` needs besides the tag.
#[derive(Debug, Clone)]
pub struct ForkOptions {
    pub name: Option<InstanceName>,
    pub supervisor: SupervisorCommand,
    pub admission: Option<AdmissionRequest>,
    pub ready_timeout: Option<Duration>,
    /// The fork's time limit (a fork does not inherit its source's).
    pub lease: Option<crate::state::Lease>,
}

/// `mvmctl up --from-snapshot TAG`: a new, independent instance restored
/// from a tagged snapshot, with its own copy of the disk.
pub fn up_from_snapshot(
    home: &Path,
    tag: &str,
    assets: &BootAssets,
    opts: &ForkOptions,
) -> Result<UpOutcome, RuntimeError> {
    let key = snapshot::seal_key(home)?;
    let snap = snapshot::open_tagged(home, tag, &key)?;
    let tag = snapshot::parse_tag(tag)?;
    let saved: Saved = serde_json::from_value(snap.manifest().payload.clone()).map_err(|e| {
        RuntimeError::Snapshot {
            detail: format!("snapshot `{tag}` does not describe an instance ({e})"),
        }
    })?;
    drop(snap);
    if saved.persist.vm.network != NetworkConfig::None {
        return Err(RuntimeError::BadInput {
            detail: format!(
                "snapshot `{tag}` is of an instance with a network; forks of networked instances are not supported yet"
            ),
            hint: "its egress gate, logs and published ports belong to the source instance; pause and resume it instead, or fork a closed-network instance".into(),
        });
    }
    let _using = crate::store::using_images(home, &saved.image)?;
    crate::store::check_boot_files(&saved.persist.vm.kernel, &saved.persist.vm.initrd)?;
    let (launch, launch_sha256) = crate::launch::load_with_digest(&saved.image.launch_json)?;
    let dir = match &opts.name {
        Some(n) => crate::up::claim(home, n)?,
        None => claim_free(home, &tag)?,
    };
    let name = dir.name.clone();
    let admitted = crate::up::admit_claimed(
        home,
        &dir,
        opts.admission.as_ref(),
        &launch,
        &launch_sha256,
        &saved.image,
        assets,
    );
    let audit = match admitted {
        Ok(audit) => audit,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir.dir);
            return Err(e);
        }
    };
    let mut persist = saved.persist;
    persist.vm.scratch = dir.scratch_img();
    if let Some(from) = persist.broker.ca_bundle.clone() {
        let to = std::path::absolute(dir.dir.join("broker-ca.pem")).unwrap_or_default();
        if let Err(e) = crate::broker::copy_ca_bundle(&from, &to) {
            let _ = std::fs::remove_dir_all(&dir.dir);
            return Err(e);
        }
        persist.broker.ca_bundle = Some(to);
    }
    let state = InstanceState {
        name: name.clone(),
        status: Status::Starting,
        created_unix_ms: now_unix_ms(),
        ready_unix_ms: None,
        ready_timeout_ms: opts
            .ready_timeout
            .map(|d| d.as_millis() as u64)
            .unwrap_or(saved.ready_timeout_ms),
        image: saved.image,
        supervisor: None,
        qemu: None,
        timings: Timings::default(),
        persist,
        audit,
        start: Start::Snapshot { tag },
        started_by: None,
        lease: opts.lease,
    };
    crate::up::launch_supervisor(home, &dir, state, &opts.supervisor, Vec::new(), Lost::Down)
}

/// Claims `TAG-1`, `TAG-2`, ...: the first name no instance has (one
/// taken meanwhile by another command is skipped, not an error).
fn claim_free(home: &Path, tag: &str) -> Result<InstanceDir, RuntimeError> {
    for n in 1..10_000 {
        let candidate = format!("{tag}-{n}");
        if candidate.len() > 63 {
            break;
        }
        let name = InstanceName::parse(&candidate)?;
        match crate::up::claim(home, &name) {
            Ok(dir) => return Ok(dir),
            Err(RuntimeError::AlreadyRunning { .. } | RuntimeError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(RuntimeError::BadInput {
        detail: format!("no free instance name for a fork of `{tag}`"),
        hint: "name it with --name".into(),
    })
}
