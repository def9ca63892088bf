//! Snapshots of instances as the runtime keeps them: what binds a saved
//! guest to the machine it came from, where each kind lives, and the tags
//! users give them. Sealing, verification and atomic publication are
//! `mvm-snapshot`'s; this module decides what goes in.
//!
//! Three kinds, all the same sealed directory (`vm.state` + `scratch.img`):
//! - **template**: `<image dir>/templates/<key>/`, a guest booted to the
//!   template point (agent up, mounts done, Python runner started; no
//!   configuration, no hook, no user code). `key` hashes the bindings, so a
//!   different kernel, QEMU, mvm, machine or network shape finds no template
//!   and boots. Living inside the image directory, templates go with it.
//! - **paused**: `<instance>/paused/`, `mvmctl pause`; its `scratch.img` is
//!   a hard link to the instance's own disk, which nothing writes while
//!   the instance is paused.
//! - **tagged**: `$MVM_HOME/snapshots/<tag>/`, `mvmctl snapshot NAME TAG`,
//!   with the instance's whole configuration as the sealed payload, so
//!   `up --from-snapshot TAG` recreates it.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::name::InstanceName;
use crate::network::NetworkConfig;
use crate::persist::{Persisted, VmConfig};
use crate::state::{AuditInfo, ImageRef};

pub use mvm_snapshot::{SealKey, Snapshot, SnapshotError, Staging};

/// The guest's memory and device state, as QEMU saved it.
pub const VM_STATE: &str = "vm.state";
/// The instance's writable disk at the moment of the snapshot.
pub const SCRATCH: &str = "scratch.img";
/// The host key snapshots are sealed with (`$MVM_HOME/snapshot-seal.key`).
pub const SEAL_KEY_FILE: &str = "snapshot-seal.key";

pub const KIND_TEMPLATE: &str = "template";
pub const KIND_PAUSED: &str = "paused";
pub const KIND_TAGGED: &str = "tagged";

/// Where an image's template for one machine shape lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSlot {
    /// `<image dir>/templates`.
    pub parent: PathBuf,
    /// Hash of the bindings: the directory name.
    pub key: String,
    /// What the template is bound to; checked again before a restore.
    pub bindings: BTreeMap<String, String>,
}

impl TemplateSlot {
    pub fn dir(&self) -> PathBuf {
        self.parent.join(&self.key)
    }
}

/// What a tagged snapshot carries to recreate its instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The instance it was taken of.
    pub source: String,
    pub image: ImageRef,
    pub persist: Persisted,
    pub audit: Option<AuditInfo>,
    pub ready_timeout_ms: u64,
}

/// The host's seal key, created on first use.
pub fn seal_key(home: &Path) -> Result<SealKey, RuntimeError> {
    SealKey::load_or_create(&home.join(SEAL_KEY_FILE)).map_err(snapshot_error)
}

pub fn snapshot_error(e: SnapshotError) -> RuntimeError {
    RuntimeError::Snapshot {
        detail: e.to_string(),
    }
}

/// `$MVM_HOME/snapshots`.
pub fn tagged_root(home: &Path) -> PathBuf {
    home.join("snapshots")
}

/// `<instance>/paused`.
pub fn paused_dir(dir: &InstanceDir) -> PathBuf {
    dir.dir.join("paused")
}

/// Tags follow instance-name rules: they become directory names.
pub fn parse_tag(tag: &str) -> Result<String, RuntimeError> {
    InstanceName::parse(tag)
        .map(|n| n.as_str().to_string())
        .map_err(|_| RuntimeError::BadInput {
            detail: format!("`{tag}` is not a valid snapshot tag"),
            hint: "use lowercase letters, digits and '-', starting with a letter, at most 63 characters".into(),
        })
}

/// Everything a restore depends on besides the snapshot's own files: the
/// same mvm, QEMU, accelerator, kernel, initramfs, image and machine.
/// Per-instance paths (sockets, logs, the scratch disk's location) are
/// not bound: a restore re-creates them.
pub fn bindings(vm: &VmConfig, image: &ImageRef) -> Result<BTreeMap<String, String>, RuntimeError> {
    let vmm = mvm_vmm::backend(mvm_vmm::Backend::default())
        .identity()
        .map_err(|e| RuntimeError::Snapshot {
            detail: format!("cannot tell the VMM version a snapshot would depend on: {e}"),
        })?;
    let mut b = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        b.insert(k.to_string(), v);
    };
    put("mvm", env!("CARGO_PKG_VERSION").to_string());
    put("vmm", vmm);
    put("accel", vm.accel.to_string());
    put("kernel", file_identity(&vm.kernel)?);
    put("initrd", file_identity(&vm.initrd)?);
    put("image", image.id.clone());
    put("rootfs", file_identity(&vm.rootfs)?);
    put("vcpus", vm.vcpus.to_string());
    put("memory_mib", vm.memory_mb.to_string());
    put("scratch_mib", vm.scratch_mb.to_string());
    put("cmdline", vm.cmdline.clone());
    put("network", network_shape(&vm.network));
    Ok(b)
}

/// A file as a restore needs it unchanged: its path, size and
/// modification time (hashing a kernel at every `up` would cost more than
/// the restore it guards; the snapshot's own files are hashed).
pub(crate) fn file_identity(path: &Path) -> Result<String, RuntimeError> {
    let meta = std::fs::metadata(path).map_err(|source| RuntimeError::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    Ok(format!(
        "{} size={} mtime={}.{:09}",
        path.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// The network as the guest and QEMU's device state see it: the device,
/// its restriction, and the guest side of every forward. Host-side
/// choices (published host ports and addresses, relay ports, the gate
/// processes' command lines with their per-instance paths) are not part
/// of it: they are QEMU's own listeners and commands, made from its
/// command line at each start, not guest state (a template is saved with
/// no connection open, and libslirp saves only guest-forward sockets).
fn network_shape(n: &NetworkConfig) -> String {
    match n {
        NetworkConfig::None => "none".into(),
        NetworkConfig::User {
            mode,
            restrict,
            published,
            gates,
            udp_relays,
        } => {
            let published: Vec<String> = published
                .iter()
                .map(|p| format!("{}/{:?}", p.guest_port, p.proto))
                .collect();
            let gates: Vec<String> = gates
                .iter()
                .map(|g| format!("{}:{}", g.guest_address, g.guest_port))
                .collect();
            let relays: Vec<String> = udp_relays
                .iter()
                .map(|r| format!("{}>{}", r.guest_relay_port, r.guest_port))
                .collect();
            format!(
                "user mode={} restrict={restrict} published=[{}] gates=[{}] relays=[{}]",
                mode.as_str(),
                published.join(","),
                gates.join(","),
                relays.join(",")
            )
        }
    }
}

/// The template slot of `image` for a machine with `bindings`.
pub fn template_slot(image: &ImageRef, bindings: BTreeMap<String, String>) -> TemplateSlot {
    let canonical = serde_json::to_vec(&bindings).expect("string maps serialize");
    let digest = sha2::Sha256::digest(&canonical);
    let key: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let parent = image
        .rootfs
        .parent()
        .map(|p| p.join("templates"))
        .unwrap_or_else(|| PathBuf::from("templates"));
    TemplateSlot {
        parent,
        key,
        bindings,
    }
}

/// Opens the tagged snapshot `tag`, seal checked.
pub fn open_tagged(home: &Path, tag: &str, key: &SealKey) -> Result<Snapshot, RuntimeError> {
    let tag = parse_tag(tag)?;
    let dir = tagged_root(home).join(&tag);
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RuntimeError::NoSuchSnapshot { tag });
        }
        _ => {}
    }
    let snapshot = Snapshot::open(&dir, key).map_err(snapshot_error)?;
    if snapshot.manifest().kind != KIND_TAGGED {
        return Err(RuntimeError::Snapshot {
            detail: format!(
                "{} is a {} snapshot, not a tagged one",
                dir.display(),
                snapshot.manifest().kind
            ),
        });
    }
    Ok(snapshot)
}

/// One line of `mvmctl snapshot list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotRow {
    pub tag: String,
    /// The instance it was taken of.
    pub source: Option<String>,
    pub image: Option<String>,
    pub image_id: Option<String>,
    pub memory_mb: Option<u32>,
    /// Bytes the snapshot takes on disk.
    pub size_bytes: u64,
    pub created_unix_ms: Option<u64>,
    /// Why the snapshot cannot be used, when it cannot.
    pub problem: Option<String>,
}

/// Every tagged snapshot, sorted by tag; broken ones say why.
pub fn list(home: &Path) -> Result<Vec<SnapshotRow>, RuntimeError> {
    let root = tagged_root(home);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let key = seal_key(home)?;
    let mut rows: Vec<SnapshotRow> = mvm_snapshot::list(&root, &key)
        .map_err(snapshot_error)?
        .into_iter()
        .map(|(tag, opened)| match opened {
            Ok(s) => {
                let saved: Option<Saved> =
                    serde_json::from_value(s.manifest().payload.clone()).ok();
                SnapshotRow {
                    tag,
                    source: saved.as_ref().map(|p| p.source.clone()),
                    image: saved.as_ref().map(|p| p.image.name.clone()),
                    image_id: saved.as_ref().map(|p| p.image.id.clone()),
                    memory_mb: saved.as_ref().map(|p| p.persist.vm.memory_mb),
                    size_bytes: s.disk_usage(),
                    created_unix_ms: Some(s.manifest().created_unix_ms),
                    problem: saved
                        .is_none()
                        .then(|| "its payload is not an instance configuration".to_string()),
                }
            }
            Err(e) => SnapshotRow {
                size_bytes: dir_usage(&root.join(&tag)),
                tag,
                source: None,
                image: None,
                image_id: None,
                memory_mb: None,
                created_unix_ms: None,
                problem: Some(e.to_string()),
            },
        })
        .collect();
    rows.sort_by(|a, b| a.tag.cmp(&b.tag));
    Ok(rows)
}

/// Removes the tagged snapshot `tag` (broken ones too).
pub fn remove(home: &Path, tag: &str) -> Result<(), RuntimeError> {
    let tag = parse_tag(tag)?;
    let dir = tagged_root(home).join(&tag);
    if std::fs::symlink_metadata(&dir).is_err() {
        return Err(RuntimeError::NoSuchSnapshot { tag });
    }
    mvm_snapshot::remove(&dir).map_err(snapshot_error)
}

/// Bytes allocated under `dir` (not following links).
pub fn dir_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.path().symlink_metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(root: &Path) -> ImageRef {
        ImageRef {
            id: "ab".repeat(32),
            name: "hello".into(),
            rootfs: root.join("images/abab/rootfs.ext4"),
            lock: None,
            launch_json: root.join("images/abab/launch.json"),
        }
    }

    #[test]
    fn template_slots_live_in_the_image_and_follow_the_bindings() {
        let root = Path::new("/h");
        let mut b = BTreeMap::from([("vcpus".to_string(), "1".to_string())]);
        let one = template_slot(&image(root), b.clone());
        assert_eq!(one.parent, Path::new("/h/images/abab/templates"));
        assert_eq!(one.key.len(), 32);
        assert_eq!(template_slot(&image(root), b.clone()).key, one.key);
        b.insert("vcpus".into(), "2".into());
        assert_ne!(template_slot(&image(root), b).key, one.key);
    }

    #[test]
    fn tags_are_names() {
        assert_eq!(parse_tag("web-1").unwrap(), "web-1");
        for bad in ["", "../x", "a/b", ".x", "Web"] {
            let e = parse_tag(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid snapshot tag"), "{e}");
        }
    }

    #[test]
    fn the_network_shape_leaves_out_gate_command_lines() {
        let gate = |argv: &str| crate::network::GateForward {
            guest_address: std::net::Ipv4Addr::new(10, 0, 2, 100),
            guest_port: 3128,
            argv: vec![argv.into()],
        };
        let net = |argv: &str| NetworkConfig::User {
            mode: mvm_launch::NetworkMode::Bridge,
            restrict: true,
            published: vec![],
            gates: vec![gate(argv)],
            udp_relays: vec![],
        };
        assert_eq!(network_shape(&net("/a")), network_shape(&net("/b")));
        let published = |host_port| NetworkConfig::User {
            mode: mvm_launch::NetworkMode::Bridge,
            restrict: true,
            published: vec![crate::network::Published {
                proto: mvm_launch::Proto::Tcp,
                guest_port: 8000,
                host_address: std::net::Ipv4Addr::LOCALHOST,
                host_port,
            }],
            gates: vec![],
            udp_relays: vec![],
        };
        // A port chosen at each `up` must not make every up a new template.
        assert_eq!(
            network_shape(&published(40001)),
            network_shape(&published(40002))
        );
        assert_ne!(network_shape(&published(40001)), network_shape(&net("/a")));
        assert_ne!(
            network_shape(&net("/a")),
            network_shape(&NetworkConfig::None)
        );
    }
}
