//! A real test image, made the way the image builder will make one
//! (mmdebstrap → files added → `mkfs.ext4 -d`), cached under
//! `$MVM_CACHE_DIR/test-rootfs/` so only the first run pays for it.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The base root: Debian bookworm with Python and its standard library
/// (python3-minimal lacks `json`, which the function runner needs).
const SUITE: &str = "bookworm";
const PACKAGES: &str = "python3";

/// Image size: the base root is ≈ 160 MB; the file is sparse, so the
/// margin costs nothing on disk.
const IMAGE_MB: u64 = 400;

pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MVM_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache"))
        .join("mvm")
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The host's own apt sources, so the test uses whatever mirror the
/// machine is configured for.
fn host_sources() -> PathBuf {
    let d = Path::new("/etc/apt/sources.list.d");
    let found = std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sources"))
        .min();
    found.unwrap_or_else(|| PathBuf::from("/etc/apt/sources.list"))
}

fn base_tar() -> PathBuf {
    let key = hex(&Sha256::digest(
        format!("{SUITE}|essential|{PACKAGES}").as_bytes(),
    ))[..16]
        .to_string();
    let dir = cache_dir().join("test-rootfs");
    let tar = dir.join(format!("{SUITE}-{key}.tar"));
    if tar.exists() {
        return tar;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let staging = dir.join(format!(".{key}.{}.tar", std::process::id()));
    run(Command::new("mmdebstrap")
        .args([
            "--quiet",
            "--variant=essential",
            &format!("--include={PACKAGES}"),
            SUITE,
        ])
        .arg(&staging)
        .arg(host_sources()));
    std::fs::rename(&staging, &tar).unwrap();
    tar
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds (or reuses) an ext4 root image holding the base root plus
/// `files` (guest path, contents, mode). Returns its path.
pub fn image(files: &[(&str, &str, u32)]) -> PathBuf {
    let base = base_tar();
    let mut h = Sha256::new();
    h.update(base.to_string_lossy().as_bytes());
    for (path, text, mode) in files {
        h.update(format!("{path}\0{mode}\0{}\0", text.len()).as_bytes());
        h.update(text.as_bytes());
    }
    let key = hex(&h.finalize())[..16].to_string();
    let out = cache_dir()
        .join("test-rootfs")
        .join(format!("image-{key}.ext4"));
    if out.exists() {
        return out;
    }
    let staging = tempfile::tempdir_in(cache_dir().join("test-rootfs")).unwrap();
    let root = staging.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run(Command::new("tar")
        .args(["-xf"])
        .arg(&base)
        .arg("-C")
        .arg(&root)
        .arg("--numeric-owner"));
    for (path, text, mode) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    let img = staging.path().join("rootfs.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "mvm-root", "-E", "root_owner=0:0", "-d"])
        .arg(&root)
        .arg(&img)
        .arg(format!("{IMAGE_MB}M")));
    std::fs::rename(&img, &out).unwrap();
    out
}
