//! VMM backends and accelerator probing.
//!
//! A backend turns a [`VmSpec`] into a running microVM process. QEMU's
//! `microvm` machine is the one backend today; the [`Vmm`] trait is the seam
//! for others (e.g. Firecracker) without `if`s through the callers.

mod accel;
mod channel;
pub mod console;
mod qemu;
mod scratch;
mod spec;

use std::path::Path;
use std::process::ExitStatus;

pub use accel::{ACCEL_ENV, AccelReport, probe};
pub use channel::{ConnectError, connect_agent, log_tail};
pub use qemu::{
    AGENT_PORT_NAME, DEFAULT_QEMU, LaunchError, Qemu, QemuProcess, QemuVersion, Qmp, QmpError,
    VersionError,
};
pub use scratch::{MIN_SCRATCH_MIB, ScratchError, create_scratch_disk};
pub use spec::{
    Accel, Disk, ExecForward, MIN_MEMORY_MIB, Network, PortForward, Protocol, SpecError, VmSpec,
};

/// Something that can start microVMs.
pub trait Vmm {
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
