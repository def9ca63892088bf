//! The instance's QEMU process, started from the recorded [`VmConfig`] so a
//! later restore can rebuild the identical machine.

use std::path::PathBuf;
use std::time::Duration;

use mvm_vmm::{Backend, GuestBoot, GuestVm, MachineConfig, VmProcess, VmSpec};

use crate::home::InstanceDir;
use crate::persist::VmConfig;
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
        mvm_vmm::create_scratch_disk(&vm.scratch, vm.scratch_mb).map_err(SupervisorError::Scratch)
    }

    /// The VMM spec for `vm`. Socket paths are relative: the supervisor
    /// runs in the instance directory, which keeps them under the unix
    /// socket path limit however deep `MVM_HOME` is.
    pub fn spec(vm: &VmConfig, dir: &InstanceDir) -> Result<VmSpec, SupervisorError> {
        // state.json records it as "kvm" / "tcg"; serde refuses others on load.
        let accel = vm.accel;
        let network = crate::network::guest_network(&vm.network);
        let relative = |p: PathBuf| p.file_name().map(PathBuf::from).unwrap_or(p);
        GuestVm {
            boot: GuestBoot {
                kernel: vm.kernel.clone(),
                initrd: vm.initrd.clone(),
                cmdline: vm.cmdline.clone(),
            },
            machine: MachineConfig {
                vcpus: vm.vcpus,
                memory_mib: vm.memory_mb,
            },
            root_disk: vm.rootfs.clone(),
            scratch_disk: vm.scratch.clone(),
            agent_socket: relative(dir.agent_sock()),
            console_log: dir.console_log(),
            vmm_log: dir.qemu_log(),
            broker_socket: Some(relative(dir.broker_sock())),
            control_socket: Some(relative(dir.monitor_sock())),
            network,
            accel,
        }
        .into_spec()
        .map_err(|e| SupervisorError::Launch(e.into()))
    }

    pub fn launch(vm: &VmConfig, dir: &InstanceDir) -> Result<Machine, SupervisorError> {
        let spec = Machine::spec(vm, dir)?;
        let process = mvm_vmm::backend(Backend::default())
            .launch(&spec)
            .map_err(SupervisorError::Launch)?;
        Machine::adopt(process, dir)
    }

    /// Starts the identical machine from a saved state instead of booting
    /// it: the open, verified file `check` (run while QEMU starts) returns.
    /// Returns once the guest runs.
    pub fn restore(
        vm: &VmConfig,
        dir: &InstanceDir,
        check: &mut dyn FnMut() -> Result<std::fs::File, String>,
    ) -> Result<Machine, SupervisorError> {
        let spec = Machine::spec(vm, dir)?;
        let process = mvm_vmm::backend(Backend::default())
            .restore_checked(&spec, check)
            .map_err(|e| match e {
                mvm_vmm::LaunchError::Refused(why) => SupervisorError::Snapshot(why),
                other => SupervisorError::Launch(other),
            })?;
        Machine::adopt(process, dir)
    }

    fn adopt(process: Box<dyn VmProcess>, dir: &InstanceDir) -> Result<Machine, SupervisorError> {
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

    /// A QMP session on the VM's control socket (relative: the supervisor
    /// runs in the instance directory). Blocking.
    pub fn qmp(dir: &InstanceDir) -> Result<mvm_vmm::Qmp, SupervisorError> {
        let relative = dir
            .monitor_sock()
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.monitor_sock());
        mvm_vmm::Qmp::connect(&relative)
            .map_err(|e| SupervisorError::Machine(format!("QEMU's control socket: {e}")))
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

    /// True while QEMU runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_alive()
    }

    /// Stops QEMU now (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        if let Err(e) = self.process.kill() {
            tracing::warn!(pid = self.process_ref.pid, "killing QEMU: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mvm_vmm::{Accel, Disk, Network};

    use super::*;
    use crate::name::InstanceName;

    fn config() -> VmConfig {
        VmConfig {
            kernel: "/k/vmlinux".into(),
            initrd: "/k/initrd".into(),
            cmdline: "console=ttyS0 mvm.root=/dev/vda mvm.scratch=/dev/vdb".into(),
            vcpus: 2,
            memory_mb: 512,
            rootfs: "/images/abc/rootfs.ext4".into(),
            scratch: "/h/instances/web/scratch.img".into(),
            scratch_mb: 1024,
            network: crate::network::NetworkConfig::None,
            accel: Accel::Tcg,
        }
    }

    fn dir() -> InstanceDir {
        InstanceDir::new(Path::new("/h"), InstanceName::parse("web").unwrap())
    }

    #[test]
    fn the_recorded_machine_becomes_the_contract_spec() {
        let spec = Machine::spec(&config(), &dir()).unwrap();
        let expected = VmSpec {
            kernel: "/k/vmlinux".into(),
            initrd: "/k/initrd".into(),
            cmdline: "console=ttyS0 mvm.root=/dev/vda mvm.scratch=/dev/vdb".into(),
            vcpus: 2,
            memory_mib: 512,
            disks: vec![
                Disk {
                    path: "/images/abc/rootfs.ext4".into(),
                    read_only: true,
                },
                Disk {
                    path: "/h/instances/web/scratch.img".into(),
                    read_only: false,
                },
            ],
            agent_socket: "agent.sock".into(),
            console_log: "/h/instances/web/console.log".into(),
            vmm_log: "/h/instances/web/qemu.log".into(),
            broker_socket: Some("broker.sock".into()),
            control_socket: Some("monitor.sock".into()),
            network: Network::None,
            accel: Accel::Tcg,
        };
        assert_eq!(spec, expected);
    }

    #[test]
    fn a_bad_record_is_refused_in_the_old_words() {
        let message = |vm: VmConfig| Machine::spec(&vm, &dir()).unwrap_err().to_string();
        assert_eq!(
            message(VmConfig {
                vcpus: 300,
                ..config()
            }),
            "cannot prepare the VM: 300 vCPUs is more than a microVM supports (255)"
        );
    }

    #[test]
    fn a_refused_spec_stays_the_cause() {
        let vm = VmConfig {
            vcpus: 300,
            ..config()
        };
        let e = Machine::spec(&vm, &dir()).unwrap_err();
        assert!(
            matches!(
                &e,
                SupervisorError::Launch(mvm_vmm::LaunchError::Spec(
                    mvm_vmm::SpecError::TooManyVcpus(300)
                ))
            ),
            "{e:?}"
        );
    }
}
