//! Where instances live on the host: `$MVM_HOME/instances/<name>/`.

use std::path::{Path, PathBuf};

use crate::name::InstanceName;

/// `$MVM_HOME`, else `$XDG_DATA_HOME/mvm`, else `~/.local/share/mvm`
/// (docs/architecture.md, "Directories on the host").
pub fn mvm_home() -> PathBuf {
    if let Some(home) = std::env::var_os("MVM_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("mvm");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/share/mvm")
}

/// The directory holding every instance directory.
pub fn instances_root(home: &Path) -> PathBuf {
    home.join("instances")
}

/// The files of one instance. Paths only; nothing here touches the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceDir {
    pub name: InstanceName,
    pub dir: PathBuf,
}

impl InstanceDir {
    pub fn new(home: &Path, name: InstanceName) -> InstanceDir {
        let dir = instances_root(home).join(name.as_str());
        InstanceDir { name, dir }
    }

    /// The instance record (see [`crate::state`]).
    pub fn state_json(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// Serial console of the guest: kernel, agent and service output.
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    /// The supervisor's own log: what the host side did and why it failed.
    pub fn supervisor_log(&self) -> PathBuf {
        self.dir.join("supervisor.log")
    }
    /// QEMU's own output: start-up errors and warnings.
    /// One JSON line per guest connection through the egress gate.
    pub fn egress_log(&self) -> PathBuf {
        self.dir.join("egress.log")
    }

    pub fn qemu_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }
    /// QEMU's chardev socket for the guest agent's virtio-serial port.
    pub fn agent_sock(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }
    /// Where the supervisor serves CLI clients.
    pub fn control_sock(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    /// QEMU's monitor, kept for snapshot/restore.
    /// The guest's broker channel (`mvm.web_fetch`), served by the supervisor.
    pub fn broker_sock(&self) -> PathBuf {
        self.dir.join("broker.sock")
    }
    pub fn monitor_sock(&self) -> PathBuf {
        self.dir.join("monitor.sock")
    }
    /// The per-instance writable layer (sparse ext4 of `rootfs_size_mb`).
    pub fn scratch_img(&self) -> PathBuf {
        self.dir.join("scratch.img")
    }
    /// Held (flock) by whoever is creating or removing the instance, so two
    /// `up`s of one name cannot both win.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lock")
    }
}
