//! mvm's guest boot contract: the one way a microVM for an mvm guest is
//! assembled, used by instances (mvm-runtime's supervisor) and the image
//! builder (mvm-image) alike.
//!
//! What the guest's pid 1 (mvm-agent, from mvm-guest's initramfs) relies on:
//! - `vda`, read-only: the image's root filesystem, the overlay's lower layer;
//! - `vdb`, writable: the scratch disk, the overlay's upper layer
//!   ([`crate::create_scratch_disk`]);
//! - the guest assets' command line, which names those two disks
//!   (`mvm.root=/dev/vda mvm.scratch=/dev/vdb`), plus `mvm.ip=ADDR/PREFIX`
//!   exactly when a network is attached: the agent configures `eth0` from it
//!   and loads the network driver only then;
//! - its channel on the backend's agent port (for QEMU, the virtio-serial
//!   port [`crate::AGENT_PORT_NAME`]), reached through `agent_socket`.

use std::path::PathBuf;

use crate::spec::{
    Accel, Disk, ExecForward, MachineConfig, Network, PortForward, SpecError, VmSpec,
};

/// The kernel, initramfs and command line of an mvm guest (what
/// `mvm_guest::ensure_assets` prepares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestBoot {
    /// Uncompressed ELF kernel (`vmlinux`) with a PVH entry point.
    pub kernel: PathBuf,
    /// The agent initramfs.
    pub initrd: PathBuf,
    /// The assets' base command line (`mvm_guest::CMDLINE_BASE`).
    pub cmdline: String,
}

/// The guest's network, with the address its agent is told to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestNetwork {
    /// No network device at all: the guest only has `lo`.
    None,
    /// A user-mode (NAT) network, as [`Network::User`]; `address`
    /// (`ADDR/PREFIX`) goes to the guest as `mvm.ip=`.
    User {
        address: String,
        forwards: Vec<PortForward>,
        restrict: bool,
        exec_forwards: Vec<ExecForward>,
    },
}

/// Everything that differs between two mvm guests; [`GuestVm::into_spec`]
/// adds the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestVm {
    pub boot: GuestBoot,
    pub machine: MachineConfig,
    /// Attached as `vda`, read-only.
    pub root_disk: PathBuf,
    /// Attached as `vdb`, writable.
    pub scratch_disk: PathBuf,
    /// Unix socket the VMM listens on for the agent's channel.
    pub agent_socket: PathBuf,
    /// The guest's serial console is written here.
    pub console_log: PathBuf,
    /// The VMM's own stdout/stderr go here.
    pub vmm_log: PathBuf,
    /// Unix socket the VMM listens on for the guest's broker channel
    /// (`mvm.web_fetch`); `None` for a guest that asks the host nothing.
    pub broker_socket: Option<PathBuf>,
    /// The VMM's control socket, for snapshot and restore; `None` when the
    /// VM will never be snapshotted.
    pub control_socket: Option<PathBuf>,
    pub network: GuestNetwork,
    pub accel: Accel,
}

impl GuestVm {
    /// The spec that boots this guest, checked against the spec's limits.
    pub fn into_spec(self) -> Result<VmSpec, SpecError> {
        let vcpus = self.machine.spec_vcpus()?;
        let (network, cmdline) = match self.network {
            GuestNetwork::None => (Network::None, self.boot.cmdline),
            GuestNetwork::User {
                address,
                forwards,
                restrict,
                exec_forwards,
            } => (
                Network::User {
                    forwards,
                    restrict,
                    exec_forwards,
                },
                format!("{} mvm.ip={address}", self.boot.cmdline),
            ),
        };
        let spec = VmSpec {
            kernel: self.boot.kernel,
            initrd: self.boot.initrd,
            cmdline,
            vcpus,
            memory_mib: self.machine.memory_mib,
            disks: vec![
                Disk {
                    path: self.root_disk,
                    read_only: true,
                },
                Disk {
                    path: self.scratch_disk,
                    read_only: false,
                },
            ],
            agent_socket: self.agent_socket,
            console_log: self.console_log,
            vmm_log: self.vmm_log,
            broker_socket: self.broker_socket,
            control_socket: self.control_socket,
            network,
            accel: self.accel,
        };
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const CMDLINE: &str = "console=ttyS0 quiet panic=-1 mvm.root=/dev/vda mvm.scratch=/dev/vdb";

    fn boot() -> GuestBoot {
        GuestBoot {
            kernel: "/cache/vmlinux".into(),
            initrd: "/cache/initrd.cpio".into(),
            cmdline: CMDLINE.into(),
        }
    }

    /// An instance as the supervisor starts it: relative sockets, a
    /// control socket, no network.
    fn instance() -> GuestVm {
        GuestVm {
            boot: boot(),
            machine: MachineConfig {
                vcpus: 2,
                memory_mib: 512,
            },
            root_disk: "/images/abc/rootfs.ext4".into(),
            scratch_disk: "/h/instances/web/scratch.img".into(),
            agent_socket: "agent.sock".into(),
            console_log: "/h/instances/web/console.log".into(),
            vmm_log: "/h/instances/web/qemu.log".into(),
            broker_socket: None,
            control_socket: Some("monitor.sock".into()),
            network: GuestNetwork::None,
            accel: Accel::Kvm,
        }
    }

    /// The image builder with a dependency install: the restricted network
    /// whose only reachable address is the egress gate.
    fn builder() -> GuestVm {
        GuestVm {
            boot: boot(),
            machine: MachineConfig {
                vcpus: 2,
                memory_mib: 1024,
            },
            root_disk: "/w/builder-root.ext4".into(),
            scratch_disk: "/w/builder-scratch.ext4".into(),
            agent_socket: "/w/agent.sock".into(),
            console_log: "/w/console.log".into(),
            vmm_log: "/w/qemu.log".into(),
            broker_socket: None,
            control_socket: None,
            network: GuestNetwork::User {
                address: "10.0.2.15/24".into(),
                forwards: vec![],
                restrict: true,
                exec_forwards: vec![gate()],
            },
            accel: Accel::Tcg,
        }
    }

    fn gate() -> ExecForward {
        ExecForward {
            guest_addr: Ipv4Addr::new(10, 0, 2, 100),
            guest_port: 3128,
            argv: vec![
                "/usr/bin/mvmctl".into(),
                "__egress-proxy".into(),
                "--grant".into(),
                "pypi.org:443".into(),
            ],
        }
    }

    fn argv(spec: &VmSpec) -> Vec<String> {
        crate::qemu::args::command_line(spec, None)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The spec mvm-runtime's supervisor built by hand before the contract
    /// had one constructor.
    #[test]
    fn an_instance_gets_the_spec_the_supervisor_built() {
        let spec = instance().into_spec().unwrap();
        let by_hand = VmSpec {
            kernel: "/cache/vmlinux".into(),
            initrd: "/cache/initrd.cpio".into(),
            cmdline: CMDLINE.into(),
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
            broker_socket: None,
            control_socket: Some("monitor.sock".into()),
            network: Network::None,
            accel: Accel::Kvm,
        };
        assert_eq!(spec, by_hand);
        let expected = [
            "-M",
            "microvm,x-option-roms=off,rtc=off,isa-serial=on",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-smp",
            "2",
            "-m",
            "512M",
            "-kernel",
            "/cache/vmlinux",
            "-initrd",
            "/cache/initrd.cpio",
            "-append",
            CMDLINE,
            "-chardev",
            "file,id=console,append=on,path=/h/instances/web/console.log",
            "-serial",
            "chardev:console",
            "-drive",
            "id=disk0,if=none,format=raw,readonly=on,file=/images/abc/rootfs.ext4",
            "-device",
            "virtio-blk-device,drive=disk0",
            "-drive",
            "id=disk1,if=none,format=raw,readonly=off,file=/h/instances/web/scratch.img",
            "-device",
            "virtio-blk-device,drive=disk1",
            "-device",
            "virtio-serial-device",
            "-chardev",
            "socket,id=agent,server=on,wait=off,path=agent.sock",
            "-device",
            "virtserialport,chardev=agent,name=mvm.agent",
            "-qmp",
            "unix:monitor.sock,server=on,wait=off",
        ];
        assert_eq!(argv(&spec), expected);
    }

    /// The spec mvm-image's builder built by hand.
    #[test]
    fn the_builder_gets_the_spec_it_built() {
        let spec = builder().into_spec().unwrap();
        let by_hand = VmSpec {
            kernel: "/cache/vmlinux".into(),
            initrd: "/cache/initrd.cpio".into(),
            cmdline: format!("{CMDLINE} mvm.ip=10.0.2.15/24"),
            vcpus: 2,
            memory_mib: 1024,
            disks: vec![
                Disk {
                    path: "/w/builder-root.ext4".into(),
                    read_only: true,
                },
                Disk {
                    path: "/w/builder-scratch.ext4".into(),
                    read_only: false,
                },
            ],
            agent_socket: "/w/agent.sock".into(),
            console_log: "/w/console.log".into(),
            vmm_log: "/w/qemu.log".into(),
            broker_socket: None,
            control_socket: None,
            network: Network::User {
                forwards: vec![],
                restrict: true,
                exec_forwards: vec![gate()],
            },
            accel: Accel::Tcg,
        };
        assert_eq!(spec, by_hand);
        let append = format!("{CMDLINE} mvm.ip=10.0.2.15/24");
        let expected = [
            "-M",
            "microvm,x-option-roms=off,rtc=off,isa-serial=on",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-accel",
            "tcg,tb-size=24",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-m",
            "1024M",
            "-kernel",
            "/cache/vmlinux",
            "-initrd",
            "/cache/initrd.cpio",
            "-append",
            &append,
            "-chardev",
            "file,id=console,append=on,path=/w/console.log",
            "-serial",
            "chardev:console",
            "-drive",
            "id=disk0,if=none,format=raw,readonly=on,file=/w/builder-root.ext4",
            "-device",
            "virtio-blk-device,drive=disk0",
            "-drive",
            "id=disk1,if=none,format=raw,readonly=off,file=/w/builder-scratch.ext4",
            "-device",
            "virtio-blk-device,drive=disk1",
            "-device",
            "virtio-serial-device",
            "-chardev",
            "socket,id=agent,server=on,wait=off,path=/w/agent.sock",
            "-device",
            "virtserialport,chardev=agent,name=mvm.agent",
            "-netdev",
            "user,id=net0,restrict=on,ipv6=off,guestfwd=tcp:10.0.2.100:3128-cmd:'/usr/bin/mvmctl' '__egress-proxy' '--grant' 'pypi.org:443'",
            "-device",
            "virtio-net-device,netdev=net0",
        ];
        assert_eq!(argv(&spec), expected);
    }

    #[test]
    fn the_builder_without_a_network_gets_no_address() {
        let spec = GuestVm {
            network: GuestNetwork::None,
            ..builder()
        }
        .into_spec()
        .unwrap();
        assert_eq!(spec.cmdline, CMDLINE);
        assert_eq!(spec.network, Network::None);
    }

    #[test]
    fn machines_outside_the_limits_are_refused() {
        let with = |vcpus, memory_mib| {
            GuestVm {
                machine: MachineConfig { vcpus, memory_mib },
                ..instance()
            }
            .into_spec()
            .unwrap_err()
        };
        assert_eq!(with(256, 512), SpecError::TooManyVcpus(256));
        assert_eq!(with(0, 512), SpecError::NoVcpus);
        assert_eq!(with(1, 32), SpecError::Memory(32));
    }
}
