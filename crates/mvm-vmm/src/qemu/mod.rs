//! The QEMU `microvm` backend.

pub(crate) mod args;
mod process;
mod qmp;
mod tsc;
mod version;

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use args::{AGENT_PORT_NAME, BROKER_PORT_NAME};
pub use process::QemuProcess;
pub use qmp::{Qmp, QmpError};
pub use version::{QemuVersion, VersionError};

use crate::spec::{Accel, VmSpec};
use crate::{LaunchError, VmProcess, Vmm};

/// Generous: under TCG on a busy host, loading a few hundred MiB of state
/// can take many seconds.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// The QEMU binary used when none is configured.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// What a person is told when the QEMU binary cannot be run.
const INSTALL_HINT: &str = "is QEMU installed? on Debian: apt-get install qemu-system-x86";
/// How messages name this backend.
const VMM_LABEL: &str = "QEMU";

/// Runs microVMs with QEMU's `microvm` machine type. Callers that launch
/// VMs get it as a [`Vmm`] from [`crate::backend`]; the type itself is
/// public for QEMU-only facts such as its [`Qemu::version`] (`doctor`).
#[derive(Debug, Clone)]
pub struct Qemu {
    binary: PathBuf,
}

impl Default for Qemu {
    fn default() -> Self {
        Self::new(DEFAULT_QEMU)
    }
}

impl Qemu {
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn version(&self) -> Result<QemuVersion, VersionError> {
        version::detect(&self.binary)
    }

    /// The full command that [`Vmm::launch`] runs, for logs and debugging.
    pub fn command(&self, spec: &VmSpec) -> Command {
        let mut command = Command::new(&self.binary);
        // Measuring the TSC takes a moment; only TCG guests need it.
        let tsc_khz = (spec.accel == Accel::Tcg).then(tsc::host_tsc_khz).flatten();
        command.args(args::command_line(spec, tsc_khz));
        command
    }
}

impl Vmm for Qemu {
    fn name(&self) -> &'static str {
        "qemu-microvm"
    }

    fn launch(&self, spec: &VmSpec) -> Result<Box<dyn VmProcess>, LaunchError> {
        self.spawn(spec, self.command(spec))
    }

    fn identity(&self) -> Result<String, String> {
        let version = self.version().map_err(|e| e.to_string())?;
        Ok(format!("{} {}", self.name(), version.banner))
    }

    fn restore(&self, spec: &VmSpec, snapshot: &Path) -> Result<Box<dyn VmProcess>, LaunchError> {
        if !snapshot.is_file() {
            return Err(LaunchError::MissingInput {
                what: "snapshot",
                path: snapshot.to_owned(),
            });
        }
        let mut open = || {
            std::fs::File::open(snapshot)
                .map_err(|e| format!("opening {}: {e}", snapshot.display()))
        };
        self.restore_checked(spec, &mut open)
    }

    /// QEMU starts with `-incoming defer`: it sets up the machine while
    /// `check` runs, and is handed the checked file afterwards.
    fn restore_checked(
        &self,
        spec: &VmSpec,
        check: &mut dyn FnMut() -> Result<std::fs::File, String>,
    ) -> Result<Box<dyn VmProcess>, LaunchError> {
        let control = spec
            .control_socket
            .as_ref()
            .ok_or(LaunchError::NoControlSocket)?;
        // The same machine, its state streamed in instead of booted.
        let mut command = self.command(spec);
        command.args(["-incoming", "defer"]);
        let mut process = self.spawn(spec, command)?;
        let state = match check() {
            Ok(file) => file,
            Err(why) => {
                let _ = process.kill();
                return Err(LaunchError::Refused(why));
            }
        };
        let restore_error = |source: QmpError| LaunchError::Restore {
            vmm: VMM_LABEL,
            source: Box::new(source),
            log_tail: crate::log_tail(&spec.vmm_log),
        };
        let loaded = connect_qmp(process.as_mut(), control)
            .and_then(|mut qmp| qmp.load(&state, RESTORE_TIMEOUT));
        if let Err(e) = loaded {
            let _ = process.kill();
            return Err(restore_error(e));
        }
        Ok(process)
    }
}

/// Connects to the control socket of a QEMU that is starting up.
fn connect_qmp(process: &mut dyn VmProcess, socket: &Path) -> Result<Qmp, QmpError> {
    loop {
        match Qmp::connect(socket) {
            Err(QmpError::Connect { .. }) if matches!(process.try_wait(), Ok(None)) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

impl Qemu {
    fn spawn(
        &self,
        spec: &VmSpec,
        mut command: Command,
    ) -> Result<Box<dyn VmProcess>, LaunchError> {
        spec.validate()?;
        let inputs = [("kernel", &spec.kernel), ("initrd", &spec.initrd)]
            .into_iter()
            .chain(spec.disks.iter().map(|disk| ("disk image", &disk.path)));
        for (what, path) in inputs {
            if !path.exists() {
                return Err(LaunchError::MissingInput {
                    what,
                    path: path.clone(),
                });
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.vmm_log)
            .map_err(|source| LaunchError::Log {
                path: spec.vmm_log.clone(),
                source,
            })?;
        let log_error = |source| LaunchError::Log {
            path: spec.vmm_log.clone(),
            source,
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(log_error)?)
            .stderr(log);
        // A session of its own: the VM outlives the terminal or process
        // group that started it, and a Ctrl-C there does not reach it.
        // SAFETY: setsid(2) is async-signal-safe and touches no memory.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        tracing::debug!(command = ?command, "starting QEMU");
        let child = command.spawn().map_err(|source| LaunchError::Spawn {
            binary: self.binary.display().to_string(),
            hint: INSTALL_HINT,
            source,
        })?;
        crate::console::watch(
            spec.console_log.clone(),
            child.id(),
            crate::console::CONSOLE_LOG_MAX_BYTES,
        );
        Ok(Box::new(QemuProcess::new(child)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Disk, Network};

    fn spec(dir: &Path) -> VmSpec {
        for file in ["vmlinux", "initrd", "root.ext4"] {
            std::fs::write(dir.join(file), b"").unwrap();
        }
        VmSpec {
            kernel: dir.join("vmlinux"),
            initrd: dir.join("initrd"),
            cmdline: "console=ttyS0".into(),
            vcpus: 1,
            memory_mib: 256,
            disks: vec![Disk {
                path: dir.join("root.ext4"),
                read_only: true,
            }],
            agent_socket: dir.join("agent.sock"),
            console_log: dir.join("console.log"),
            vmm_log: dir.join("qemu.log"),
            broker_socket: None,
            control_socket: None,
            network: Network::None,
            accel: Accel::Kvm,
        }
    }

    /// The backend-neutral error still says what it said when it was QEMU's.
    #[test]
    fn a_missing_binary_says_how_to_install_qemu() {
        let dir = tempfile::tempdir().unwrap();
        let err = Qemu::new("/nonexistent/qemu-system-x86_64")
            .launch(&spec(dir.path()))
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "could not start /nonexistent/qemu-system-x86_64 (is QEMU installed? on Debian: apt-get install qemu-system-x86): "
            ),
            "{err}"
        );
    }

    #[test]
    fn a_failed_restore_quotes_the_qemu_log() {
        let err = LaunchError::Restore {
            vmm: VMM_LABEL,
            source: Box::new(QmpError::Malformed("{".into())),
            log_tail: "qemu: boom".into(),
        };
        let qmp = QmpError::Malformed("{".into()).to_string();
        assert_eq!(
            err.to_string(),
            format!("restoring the snapshot failed: {qmp}; QEMU log tail:\nqemu: boom")
        );
    }

    #[test]
    fn restoring_without_a_snapshot_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("vm.state");
        let err = Qemu::default()
            .restore(&spec(dir.path()), &missing)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("snapshot {} does not exist", missing.display())
        );
    }
}
