//! The snapshot-relevant state of an instance, kept together on purpose.
//!
//! Restoring a snapshot taken after readiness means starting QEMU with the
//! *identical* machine ([`VmConfig`]: same kernel, initrd, command line,
//! vCPUs, memory, disks and devices, plus `-incoming`), keeping the scratch
//! disk that holds the guest's writes, and reconnecting to the agent, which
//! already holds the [`GuestConfig`] it was configured with. Nothing else
//! in `state.json` is needed to bring a snapshot back; everything outside
//! this module (pids, timings, sockets) is re-created by a restore.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The machine QEMU was started with. A restore must reproduce it exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    /// `vda`: the image's root filesystem, attached read-only.
    pub rootfs: PathBuf,
    /// `vdb`: this instance's writable layer; part of any snapshot.
    pub scratch: PathBuf,
    pub scratch_mb: u64,
    /// The network device and everything forwarded to it (crate::network).
    pub network: NetworkConfig,
    /// `kvm` or `tcg`; a snapshot restores only under the same accelerator.
    pub accel: mvm_vmm::Accel,
}

pub use crate::network::NetworkConfig;

/// What the guest was told during the lifecycle; it lives in guest memory
/// after `Configure`, so a restored guest already has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestConfig {
    /// The env given to hooks and entrypoints: literal values, and opaque
    /// tokens in place of secrets.
    pub env: BTreeMap<String, String>,
    /// Env var → secret name for every token handed out, so a host-side
    /// broker can map a token back to the secret it stands for.
    pub secret_tokens: BTreeMap<String, String>,
    /// The command entrypoint started as a service, if the primary is one.
    pub service: Option<String>,
    /// The host's CA bundle, given to a guest with egress grants at
    /// [`crate::network::GUEST_CA_FILE`] (read at each boot): the guest's
    /// TLS clients verify servers as this host would, including a
    /// TLS-inspecting proxy the host trusts. mvm never terminates TLS.
    #[serde(default)]
    pub host_ca: Option<PathBuf>,
}

/// The whole snapshot-relevant record of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    pub vm: VmConfig,
    pub guest: GuestConfig,
    /// What the host may do for the guest's mediated requests.
    #[serde(default)]
    pub broker: crate::broker::BrokerConfig,
}
