//! The boot sequence: kernel filesystems, modules, the root overlay, the
//! runners, then switch root.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::guest_net::{self, NetError};
use super::modules;
use super::mounts::{self, MountError};
use super::net;
use crate::layout::{
    INITRAMFS_NODE_SDK_DIR, INITRAMFS_RUNNERS_DIR, PYTHON_SDK_DIR, ROOT_NODE_SDK_DIR,
    RUN_RUNNERS_DIR,
};
use crate::log;

/// How long to wait for the disks to appear after their driver loaded.
/// Generous: under TCG emulation on a busy host probing is slow.
const DEVICE_WAIT: Duration = Duration::from_secs(60);

const LOWER: &str = "/mnt/lower";
const SCRATCH: &str = "/mnt/scratch";
const NEW_ROOT: &str = "/mnt/root";

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("cannot read the kernel command line: {0}")]
    Cmdline(#[source] io::Error),
    #[error(
        "the kernel command line has no {0}= (the boot contract requires mvm.root= and mvm.scratch=)"
    )]
    MissingParameter(&'static str),
    #[error(
        "{path} did not appear within {waited:?}; is its virtio-blk disk attached and its driver in the load order?"
    )]
    DeviceMissing { path: String, waited: Duration },
    #[error("cannot read the module load order: {0}")]
    Modules(#[source] io::Error),
    #[error("cannot copy {from} into the new root: {source}")]
    Copy { from: String, source: io::Error },
    #[error("the kernel command line's {0}= is malformed (expected ADDRESS/PREFIX)")]
    BadParameter(&'static str),
    #[error("cannot configure the network: {0}")]
    Network(#[source] io::Error),
    #[error(transparent)]
    Egress(#[from] NetError),
    #[error("cannot clear the initramfs before switching root: {0}")]
    Clear(#[source] io::Error),
}

pub fn boot() -> Result<(), BootError> {
    mounts::mount("proc", "/proc", "proc", 0, "")?;
    mounts::mount("sysfs", "/sys", "sysfs", 0, "")?;
    mounts::mount("devtmpfs", "/dev", "devtmpfs", 0, "")?;
    mounts::mount(
        "tmpfs",
        "/run",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0755",
    )?;
    let loaded = modules::load_list(modules::BOOT_LIST).map_err(BootError::Modules)?;
    log!("loaded {loaded} modules");

    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(BootError::Cmdline)?;
    let root = parameter(&cmdline, "mvm.root").ok_or(BootError::MissingParameter("mvm.root"))?;
    let scratch =
        parameter(&cmdline, "mvm.scratch").ok_or(BootError::MissingParameter("mvm.scratch"))?;
    wait_for(root)?;
    wait_for(scratch)?;
    let address = match parameter(&cmdline, "mvm.ip") {
        None => None,
        Some(text) => Some(net::Address::parse(text).ok_or(BootError::BadParameter("mvm.ip"))?),
    };
    if address.is_some() {
        let loaded = modules::load_list(modules::NETWORK_LIST).map_err(BootError::Modules)?;
        log!("loaded {loaded} network modules");
    }
    net::configure(address).map_err(BootError::Network)?;
    if let Some(a) = address {
        log!("eth0 {}/{}", a.ip, a.prefix);
    }

    mounts::mount(root, LOWER, "ext4", libc::MS_RDONLY, "")?;
    mounts::mount(scratch, SCRATCH, "ext4", 0, "")?;
    for dir in ["upper", "work"] {
        let path = Path::new(SCRATCH).join(dir);
        std::fs::create_dir_all(&path).map_err(|source| BootError::Copy {
            from: path.display().to_string(),
            source,
        })?;
    }
    let options = format!("lowerdir={LOWER},upperdir={SCRATCH}/upper,workdir={SCRATCH}/work");
    mounts::mount("overlay", NEW_ROOT, "overlay", 0, &options)?;
    log!("root {root} (read-only) with scratch {scratch}");
    // The egress policy needs launch.json, which is in the new root; until
    // it is in place nothing but this agent runs in the guest.
    if address.is_some() {
        let start = Instant::now();
        let workload = parameter(&cmdline, "mvm.net") == Some("workload");
        let (done, relays) = guest_net::apply_with_relays(Path::new(NEW_ROOT), workload)?;
        log!("network {done} in {:?}", start.elapsed());
        // Published UDP ports in bridge mode; listening before the agent
        // says hello, so the host's relay finds them when it connects.
        if !relays.is_empty() {
            crate::udp_relay::start(&relays).map_err(BootError::Network)?;
            log!("relaying {} published UDP ports over TCP", relays.len());
        }
    }

    // Runners go to /run first (the tmpfs that moves into the new root);
    // the SDK goes into the overlay, where the Python runner expects it.
    copy_tree(Path::new(INITRAMFS_RUNNERS_DIR), Path::new(RUN_RUNNERS_DIR))?;
    let sdk_target = Path::new(NEW_ROOT).join(PYTHON_SDK_DIR.trim_start_matches('/'));
    copy_tree(Path::new(PYTHON_SDK_DIR), &sdk_target)?;
    let node_sdk_target = Path::new(NEW_ROOT).join(ROOT_NODE_SDK_DIR.trim_start_matches('/'));
    copy_tree(Path::new(INITRAMFS_NODE_SDK_DIR), &node_sdk_target)?;

    for dir in ["/proc", "/sys", "/dev", "/run"] {
        mounts::move_mount(dir, &format!("{NEW_ROOT}{dir}"))?;
    }
    switch_root()?;
    log!("switched root");
    Ok(())
}

/// The value of `key=value` on the kernel command line.
fn parameter<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

fn wait_for(device: &str) -> Result<(), BootError> {
    let start = Instant::now();
    while !Path::new(device).exists() {
        if start.elapsed() > DEVICE_WAIT {
            return Err(BootError::DeviceMissing {
                path: device.into(),
                waited: DEVICE_WAIT,
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Copies a directory tree (regular files, directories); a missing source
/// is skipped, since an initramfs may ship no SDK.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BootError> {
    let failed = |source: io::Error| BootError::Copy {
        from: from.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    std::fs::create_dir_all(to).map_err(failed)?;
    for entry in entries {
        let entry = entry.map_err(failed)?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(failed)?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(failed)?;
        }
    }
    Ok(())
}

/// Frees the initramfs memory and makes the overlay `/`: the initramfs
/// (a rootfs) cannot be unmounted, so its files are deleted, the new root
/// is moved over `/`, and the agent chroots into it.
fn switch_root() -> Result<(), BootError> {
    let root_dev = Path::new("/").metadata().map_err(BootError::Clear)?.dev();
    clear_dir(Path::new("/"), root_dev).map_err(BootError::Clear)?;
    std::env::set_current_dir(NEW_ROOT).map_err(BootError::Clear)?;
    mounts::move_mount(".", "/")?;
    mounts::chroot_here()?;
    Ok(())
}

/// Deletes everything under `dir` on device `dev`, leaving other mounts
/// (the new root) alone.
fn clear_dir(dir: &Path, dev: u64) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path: PathBuf = entry?.path();
        let meta = path.symlink_metadata()?;
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            if mounts::is_mount_point(&path) {
                continue;
            }
            clear_dir(&path, dev)?;
            // Directories still holding mount points stay.
            let _ = std::fs::remove_dir(&path);
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::{clear_dir, copy_tree, parameter};

    #[test]
    fn copies_a_tree_and_skips_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("mvm/sub")).unwrap();
        std::fs::write(from.join("mvm/__init__.py"), "x = 1\n").unwrap();
        std::fs::write(from.join("mvm/sub/a.py"), "").unwrap();
        let to = dir.path().join("to/usr/lib/mvm/python");
        copy_tree(&from, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(to.join("mvm/__init__.py")).unwrap(),
            "x = 1\n"
        );
        assert!(to.join("mvm/sub/a.py").is_file());
        copy_tree(&dir.path().join("absent"), &dir.path().join("never")).unwrap();
        assert!(!dir.path().join("never").exists());
    }

    #[test]
    fn clearing_removes_everything_on_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("initramfs");
        std::fs::create_dir_all(root.join("lib/modules")).unwrap();
        std::fs::write(root.join("init"), "").unwrap();
        std::fs::write(root.join("lib/modules/virtio.ko"), "").unwrap();
        std::os::unix::fs::symlink("lib", root.join("lib64")).unwrap();
        let dev = root.metadata().unwrap().dev();
        clear_dir(&root, dev).unwrap();
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn reads_parameters_from_the_command_line() {
        let cmdline = "console=ttyS0 quiet panic=-1 mvm.root=/dev/vda mvm.scratch=/dev/vdb virtio_mmio.device=512@0xfeb00e00:12\n";
        assert_eq!(parameter(cmdline, "mvm.root"), Some("/dev/vda"));
        assert_eq!(parameter(cmdline, "mvm.scratch"), Some("/dev/vdb"));
        assert_eq!(parameter(cmdline, "mvm.rootx"), None);
        assert_eq!(parameter("mvm.root", "mvm.root"), None);
    }
}
