//! What a microVM is launched with, independent of the VMM that runs it.

use std::path::PathBuf;

/// Smallest guest memory: the Debian cloud kernel unpacking the initramfs
/// and loading its modules needs more than this to reach `/init`.
pub const MIN_MEMORY_MIB: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's software emulation: slower, but works on any host.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// A raw disk image.
    pub path: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A host port on 127.0.0.1 forwarded to a guest port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    pub protocol: Protocol,
    pub host_port: u16,
    pub guest_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// No network device at all: the guest only has `lo`.
    None,
    /// A user-mode (NAT) network. `restrict` cuts the guest off from the
    /// host and the outside; the forwards still reach it.
    User {
        forwards: Vec<PortForward>,
        restrict: bool,
        /// Guest-side addresses served by host processes (allowed even
        /// when `restrict` is on).
        exec_forwards: Vec<ExecForward>,
    },
}

/// Connections the guest opens to `guest_addr:guest_port` are each handed
/// to a new host process, `argv`, on its stdin/stdout. With `restrict`,
/// this is how a guest reaches exactly one host-side service (the egress
/// gate) and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecForward {
    pub guest_addr: std::net::Ipv4Addr,
    pub guest_port: u16,
    pub argv: Vec<String>,
}

/// Everything needed to start one microVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Uncompressed ELF kernel (`vmlinux`) with a PVH entry point.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub vcpus: u8,
    pub memory_mib: u32,
    /// Attached in order as vda, vdb, ...
    pub disks: Vec<Disk>,
    /// Unix socket the VMM listens on for the guest agent's channel.
    pub agent_socket: PathBuf,
    /// The guest's serial console is written here.
    pub console_log: PathBuf,
    /// The VMM's own stdout/stderr (startup errors, warnings) go here.
    pub vmm_log: PathBuf,
    /// Unix socket of the VMM's control interface (QMP for QEMU), used for
    /// snapshot and restore.
    pub control_socket: Option<PathBuf>,
    pub network: Network,
    pub accel: Accel,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("a microVM needs at least 1 vCPU")]
    NoVcpus,
    #[error(
        "{0} MiB of guest memory is too little; the guest kernel needs at least {MIN_MEMORY_MIB} MiB"
    )]
    Memory(u32),
    #[error("{0} disks is more than the 26 that get /dev/vdX names")]
    TooManyDisks(usize),
    #[error("host port {0} is forwarded twice")]
    DuplicateForward(u16),
}

impl VmSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.vcpus == 0 {
            return Err(SpecError::NoVcpus);
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(SpecError::Memory(self.memory_mib));
        }
        if self.disks.len() > 26 {
            return Err(SpecError::TooManyDisks(self.disks.len()));
        }
        if let Network::User { forwards, .. } = &self.network {
            for (i, forward) in forwards.iter().enumerate() {
                let clash = forwards[..i].iter().any(|earlier| {
                    earlier.host_port == forward.host_port && earlier.protocol == forward.protocol
                });
                if clash {
                    return Err(SpecError::DuplicateForward(forward.host_port));
                }
            }
        }
        Ok(())
    }
}
