//! A small Debian root filesystem for agent boot tests: `mmdebstrap` into a
//! directory, then `mkfs.ext4 -d`. Cached in the shared test cache under a
//! name derived from its inputs, staged and renamed like every cache entry.

use std::path::{Path, PathBuf};
use std::process::Command;

const SUITE: &str = "bookworm";
const VARIANT: &str = "essential";
const PACKAGES: &str = "python3-minimal";
const SIZE_MIB: u64 = 512;

/// The cached test root image, built on first use (about a minute).
pub fn test_rootfs(cache: &Path) -> PathBuf {
    let key = format!(
        "{SUITE}-{VARIANT}-{}-{SIZE_MIB}M",
        PACKAGES.replace(',', "+")
    );
    let dir = cache.join("test-rootfs");
    let target = dir.join(format!("{key}.ext4"));
    if target.is_file() {
        return target;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&dir)
        .unwrap();
    let tree = staging.path().join("root");
    run(Command::new("mmdebstrap")
        .args(["--quiet", "--mode=root", &format!("--variant={VARIANT}")])
        .arg(format!("--include={PACKAGES}"))
        .arg(SUITE)
        .arg(&tree));
    let image = staging.path().join("root.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "mvm-test-root", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg(format!("{SIZE_MIB}M")));
    std::fs::rename(&image, &target).unwrap();
    target
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
