//! What a microVM is launched with, independent of the VMM that runs it.
//! The limits a spec must keep sit next to it, checked in
//! [`VmSpec::validate`] (and, for the vCPU count callers hold as `u32`, in
//! [`MachineConfig::spec_vcpus`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Smallest guest memory: the Debian cloud kernel unpacking the initramfs
/// and loading its modules needs more than this to reach `/init`.
pub const MIN_MEMORY_MIB: u32 = 64;
/// Most vCPUs a spec can ask for (the width of [`VmSpec::vcpus`]).
pub const MAX_VCPUS: u8 = u8::MAX;
/// Disks beyond this get no `/dev/vdX` name in the guest.
pub const MAX_DISKS: usize = 26;

/// The accelerator a VM runs under. Serialises as `"kvm"` / `"tcg"`, the
/// same words [`Accel::as_str`], `Display` and `FromStr` use, and the
/// words instance state has always recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not `kvm` or `tcg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown accelerator `{0}` (expected kvm or tcg)")]
pub struct UnknownAccel(pub String);

impl FromStr for Accel {
    type Err = UnknownAccel;

    /// Exactly `kvm` or `tcg` (case matters, as it always has).
    fn from_str(name: &str) -> Result<Accel, UnknownAccel> {
        [Accel::Kvm, Accel::Tcg]
            .into_iter()
            .find(|accel| accel.as_str() == name)
            .ok_or_else(|| UnknownAccel(name.to_owned()))
    }
}

/// How much machine a guest gets, as callers hold it (the launch contract
/// carries `u32`s). Bounds: 1..=[`MAX_VCPUS`] vCPUs, at least
/// [`MIN_MEMORY_MIB`] of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    pub vcpus: u32,
    pub memory_mib: u32,
}

impl MachineConfig {
    /// The vCPU count as [`VmSpec::vcpus`] holds it; the lower bound is
    /// [`VmSpec::validate`]'s.
    pub fn spec_vcpus(self) -> Result<u8, SpecError> {
        u8::try_from(self.vcpus).map_err(|_| SpecError::TooManyVcpus(self.vcpus))
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

/// A host address and port (127.0.0.1 unless the operator chose another)
/// forwarded to a guest port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    pub protocol: Protocol,
    pub host_address: std::net::Ipv4Addr,
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
    /// Unix socket the VMM listens on for the guest's broker channel
    /// (requests the guest makes of the host); `None`: no such channel.
    pub broker_socket: Option<PathBuf>,
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
    #[error("{0} vCPUs is more than a microVM supports ({MAX_VCPUS})")]
    TooManyVcpus(u32),
    #[error(
        "{0} MiB of guest memory is too little; the guest kernel needs at least {MIN_MEMORY_MIB} MiB"
    )]
    Memory(u32),
    #[error("{0} disks is more than the {MAX_DISKS} that get /dev/vdX names")]
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
        if self.disks.len() > MAX_DISKS {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accel_words_are_the_recorded_ones() {
        for (accel, word) in [(Accel::Kvm, "kvm"), (Accel::Tcg, "tcg")] {
            assert_eq!(
                serde_json::to_string(&accel).unwrap(),
                format!("\"{word}\"")
            );
            assert_eq!(
                serde_json::from_str::<Accel>(&format!("\"{word}\"")).unwrap(),
                accel
            );
            assert_eq!(accel.to_string(), word);
            assert_eq!(word.parse::<Accel>().unwrap(), accel);
        }
        assert_eq!(
            "KVM".parse::<Accel>().unwrap_err().to_string(),
            "unknown accelerator `KVM` (expected kvm or tcg)"
        );
        assert!(serde_json::from_str::<Accel>("\"hvf\"").is_err());
    }

    #[test]
    fn vcpu_counts_past_the_limit_are_refused_with_it() {
        let machine = |vcpus| MachineConfig {
            vcpus,
            memory_mib: 256,
        };
        assert_eq!(machine(255).spec_vcpus().unwrap(), 255);
        let err = machine(256).spec_vcpus().unwrap_err();
        assert_eq!(err, SpecError::TooManyVcpus(256));
        assert_eq!(
            err.to_string(),
            "256 vCPUs is more than a microVM supports (255)"
        );
    }
}
