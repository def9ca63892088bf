//! Saving a running guest into a sealed snapshot, and getting a verified
//! one ready to restore. QEMU writes the memory and device state; the
//! scratch disk is copied (the guest goes on running) or linked (the
//! guest stops: `pause`) while the VM is stopped, so disk and memory are
//! of the same instant.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::home::InstanceDir;
use crate::persist::VmConfig;
use crate::snapshot::{self, SCRATCH, SealKey, Snapshot, Staging, VM_STATE};

use super::error::SupervisorError;
use super::machine::Machine;

/// Saving a few hundred MiB under TCG on a busy host takes seconds.
const SAVE_TIMEOUT: Duration = Duration::from_secs(120);

/// What happens to the scratch disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scratch {
    /// A sparse copy: the guest goes on writing its own.
    Copy,
    /// A hard link: the guest stops and nothing writes the disk until it
    /// is restored.
    Link,
}

/// A snapshot saved into its staging directory, the VM still stopped.
pub struct Saved {
    pub staging: Staging,
    pub qmp: mvm_vmm::Qmp,
    /// How long the guest has been stopped so far.
    pub stopped: Instant,
}

fn snap_err(e: impl std::fmt::Display) -> SupervisorError {
    SupervisorError::Snapshot(e.to_string())
}

/// Stops the VM and saves it into `staging`. On error the VM is running
/// again (if QEMU still is) and the staging directory is gone.
pub async fn save(
    dir: &InstanceDir,
    vm: &VmConfig,
    staging: Staging,
    scratch: Scratch,
) -> Result<Saved, SupervisorError> {
    let (dir, vm) = (dir.clone(), vm.clone());
    tokio::task::spawn_blocking(move || save_blocking(&dir, &vm, staging, scratch))
        .await
        .map_err(|e| SupervisorError::Snapshot(format!("saving panicked: {e}")))?
}

fn save_blocking(
    dir: &InstanceDir,
    vm: &VmConfig,
    mut staging: Staging,
    scratch: Scratch,
) -> Result<Saved, SupervisorError> {
    let mut qmp = Machine::qmp(dir)?;
    let stopped = Instant::now();
    let result = (|| {
        qmp.snapshot(&staging.file_path(VM_STATE), SAVE_TIMEOUT)
            .map_err(snap_err)?;
        staging.add(VM_STATE).map_err(snap_err)?;
        match scratch {
            Scratch::Copy => {
                staging.copy_in(&vm.scratch, SCRATCH).map_err(snap_err)?;
            }
            Scratch::Link => {
                std::fs::hard_link(&vm.scratch, staging.file_path(SCRATCH)).map_err(|e| {
                    SupervisorError::Snapshot(format!(
                        "linking {} into the snapshot: {e}",
                        vm.scratch.display()
                    ))
                })?;
                staging.add(SCRATCH).map_err(snap_err)?;
            }
        }
        Ok::<(), SupervisorError>(())
    })();
    match result {
        Ok(()) => Ok(Saved {
            staging,
            qmp,
            stopped,
        }),
        Err(e) => {
            // Whatever failed, the guest goes on as it was.
            if let Err(c) = qmp.cont() {
                tracing::warn!("resuming the guest after a failed snapshot: {c}");
            }
            Err(e)
        }
    }
}

/// Seals and publishes a saved snapshot.
pub fn commit(
    saved: Staging,
    key: &SealKey,
    kind: &str,
    bindings: BTreeMap<String, String>,
    payload: serde_json::Value,
) -> Result<Snapshot, SupervisorError> {
    saved.commit(key, kind, bindings, payload).map_err(snap_err)
}

/// A snapshot checked and made ready for a restore: the seal, its kind
/// and what it is bound to; with `scratch_to` its disk is copied there
/// (verified as it goes). The state file is the caller's to open and
/// verify ([`Snapshot::open_verified`]) as QEMU starts.
pub fn prepare(
    dir: &Path,
    key: &SealKey,
    kind: &str,
    bindings: &BTreeMap<String, String>,
    scratch_to: Option<&Path>,
) -> Result<Snapshot, SupervisorError> {
    let snapshot = Snapshot::open(dir, key).map_err(snap_err)?;
    if snapshot.manifest().kind != kind {
        return Err(SupervisorError::Snapshot(format!(
            "{} is a {} snapshot, not a {kind} one",
            dir.display(),
            snapshot.manifest().kind
        )));
    }
    snapshot.check_bindings(bindings).map_err(snap_err)?;
    if let Some(to) = scratch_to {
        snapshot.copy_out(SCRATCH, to).map_err(snap_err)?;
    }
    Ok(snapshot)
}

/// The seal key, for the supervisor (`MVM_HOME` is absolute here).
pub fn seal_key(home: &Path) -> Result<SealKey, SupervisorError> {
    snapshot::seal_key(home).map_err(|e| SupervisorError::Snapshot(e.to_string()))
}
