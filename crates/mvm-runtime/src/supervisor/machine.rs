//! The instance's QEMU process, started from the recorded [`VmConfig`] so a
//! later restore can rebuild the identical machine.

use std::path::PathBuf;
use std::time::Duration;

use mvm_vmm::{Accel, Disk, Network, Qemu, VmProcess, VmSpec, Vmm};

use crate::home::InstanceDir;
use crate::persist::{NetworkConfig, VmConfig};
use crate::process::ProcessRef;

use super::error::SupervisorError;

/// How often the supervisor checks whether QEMU is still running.
const EXIT_POLL: Duration = Duration::from_millis(50);

pub struct Machine {
    process: Box<dyn VmProcess>,
    process_ref: ProcessRef,
}

impl Machine {
    /// Creates the instance's sparse scratch disk (overlay upper layer).
    pub fn create_scratch(vm: &VmConfig) -> Result<(), SupervisorError> {
        mvm_vmm::create_scratch_disk(&vm.scratch, vm.scratch_mb)
            .map_err(|e| SupervisorError::Machine(e.to_string()))
    }

    /// The VMM spec for `vm`. Socket paths are relative: the supervisor
    /// runs in the instance directory, which keeps them under the unix
    /// socket path limit however deep `MVM_HOME` is.
    pub fn spec(vm: &VmConfig, dir: &InstanceDir) -> Result<VmSpec, SupervisorError> {
        let vcpus = u8::try_from(vm.vcpus).map_err(|_| {
            SupervisorError::Machine(format!(
                "{} vCPUs is more than a microVM supports (255)",
                vm.vcpus
            ))
        })?;
        let accel = match vm.accel.as_str() {
            "kvm" => Accel::Kvm,
            "tcg" => Accel::Tcg,
            other => {
                return Err(SupervisorError::Machine(format!(
                    "unknown accelerator `{other}` (expected kvm or tcg)"
                )));
            }
        };
        let network = match vm.network {
            NetworkConfig::None => Network::None,
        };
        let relative = |p: PathBuf| p.file_name().map(PathBuf::from).unwrap_or(p);
        Ok(VmSpec {
            kernel: vm.kernel.clone(),
            initrd: vm.initrd.clone(),
            cmdline: vm.cmdline.clone(),
            vcpus,
            memory_mib: vm.memory_mb,
            disks: vec![
                Disk {
                    path: vm.rootfs.clone(),
                    read_only: true,
                },
                Disk {
                    path: vm.scratch.clone(),
                    read_only: false,
                },
            ],
            agent_socket: relative(dir.agent_sock()),
            console_log: dir.console_log(),
            vmm_log: dir.qemu_log(),
            control_socket: Some(relative(dir.monitor_sock())),
            network,
            accel,
        })
    }

    pub fn launch(vm: &VmConfig, dir: &InstanceDir) -> Result<Machine, SupervisorError> {
        let spec = Machine::spec(vm, dir)?;
        let process = Qemu::default()
            .launch(&spec)
            .map_err(|e| SupervisorError::Machine(e.to_string()))?;
        let pid = process.pid() as i32;
        let process_ref = ProcessRef::of(pid).ok_or_else(|| {
            SupervisorError::Machine(format!(
                "QEMU (pid {pid}) exited at once; see {}",
                dir.qemu_log().display()
            ))
        })?;
        Ok(Machine {
            process,
            process_ref,
        })
    }

    pub fn process(&self) -> ProcessRef {
        self.process_ref
    }

    /// Resolves when QEMU has exited, with its exit status.
    pub async fn exited(&mut self) -> String {
        loop {
            match self.process.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) => tokio::time::sleep(EXIT_POLL).await,
                Err(e) => return format!("its status could not be read: {e}"),
            }
        }
    }

    /// Stops QEMU now (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        if let Err(e) = self.process.kill() {
            tracing::warn!(pid = self.process_ref.pid, "killing QEMU: {e}");
        }
    }
}
