//! VMM backends and accelerator probing.
//!
//! API boundary:
//! - [`GuestVm`] is mvm's guest boot contract (root disk `vda` read-only,
//!   scratch `vdb`, the command line with `mvm.ip=` when networked); both
//!   instances and the image builder assemble their VMs with it, and
//!   nothing else hand-builds a [`VmSpec`] for an mvm guest. The limits
//!   ([`MAX_VCPUS`], [`MIN_MEMORY_MIB`], [`MAX_DISKS`]) sit next to the
//!   spec and are checked in [`VmSpec::validate`].
//! - [`backend`] turns a [`Backend`] into a [`Vmm`] trait object that runs a
//!   [`VmSpec`]; errors are the backend-neutral [`LaunchError`]. Callers
//!   never name the type behind it.
//! - [`Accel`] is what the host can run (see [`probe`]); it serialises as
//!   `"kvm"` / `"tcg"`.
//!
//! QEMU's `microvm` machine is the one backend today. A second one
//! (Firecracker, Cloud Hypervisor) is one new module implementing [`Vmm`]
//! and [`VmProcess`] plus a [`Backend`] variant in `backend.rs`; callers
//! need no edits. [`Qemu`], [`Qmp`] and [`QemuVersion`] stay public for
//! QEMU-only facts (`doctor`'s version check, snapshot tests).

mod accel;
mod backend;
mod channel;
pub mod console;
mod error;
mod guest;
mod qemu;
mod scratch;
mod spec;

use std::path::Path;
use std::process::ExitStatus;

pub use accel::{ACCEL_ENV, AccelReport, probe};
pub use backend::{Backend, backend};
pub use channel::{ConnectError, connect_agent, log_tail};
pub use error::LaunchError;
pub use guest::{GuestBoot, GuestNetwork, GuestVm};
pub use qemu::{
    AGENT_PORT_NAME, BROKER_PORT_NAME, DEFAULT_QEMU, Qemu, QemuProcess, QemuVersion, Qmp, QmpError,
    VersionError,
};
pub use scratch::{MIN_SCRATCH_MIB, ScratchError, create_scratch_disk};
pub use spec::{
    Accel, Disk, ExecForward, MAX_DISKS, MAX_VCPUS, MIN_MEMORY_MIB, MachineConfig, Network,
    PortForward, Protocol, SpecError, UnknownAccel, VmSpec,
};

/// Something that can start microVMs; get one from [`backend`].
pub trait Vmm: Send + Sync {
    /// Short name for logs and `doctor`.
    fn name(&self) -> &'static str;

    /// Starts a VM in its own session with stdio going to `spec.vmm_log`.
    /// Returns once the process is started; reach the guest with
    /// [`connect_agent`].
    fn launch(&self, spec: &VmSpec) -> Result<Box<dyn VmProcess>, LaunchError>;

    /// Starts the VM of `spec` from a state saved by [`Qmp::snapshot`]
    /// instead of booting it. `spec` must describe the same machine (the
    /// same disks, unchanged since the snapshot); the guest resumes where
    /// it was, with its agent channel open on `spec.agent_socket`. Returns
    /// once the state is loaded and the guest runs.
    fn restore(&self, spec: &VmSpec, snapshot: &Path) -> Result<Box<dyn VmProcess>, LaunchError>;

    /// [`Vmm::restore`] from the file `check` returns, run while the VM
    /// process starts up (e.g. the saved state opened and its digest
    /// verified): the state is read from exactly that open file, and only
    /// once the check passed. A failed check stops the VM and is returned
    /// as [`LaunchError::Refused`].
    fn restore_checked(
        &self,
        spec: &VmSpec,
        check: &mut dyn FnMut() -> Result<std::fs::File, String>,
    ) -> Result<Box<dyn VmProcess>, LaunchError>;

    /// The VMM and its exact version: a state saved by one is only
    /// restored by the same (snapshots are bound to it).
    fn identity(&self) -> Result<String, String>;
}

/// A running VM process.
pub trait VmProcess: Send + std::fmt::Debug {
    fn pid(&self) -> u32;
    /// The exit status if the VM has stopped, without blocking.
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>>;
    /// Blocks until the VM stops (e.g. the guest powered off).
    fn wait(&mut self) -> std::io::Result<ExitStatus>;
    /// Stops the VM now (SIGKILL) and reaps it.
    fn kill(&mut self) -> std::io::Result<()>;
    /// True while the VM process runs.
    fn is_alive(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }
    /// Lets the VM keep running after this handle is gone; returns its pid.
    fn disown(self: Box<Self>) -> u32;
}
