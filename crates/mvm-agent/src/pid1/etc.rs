//! `/etc/hosts` and `/etc/resolv.conf` in the new root, from the layout.
//!
//! Whatever the image had is replaced, never written through: a symlink
//! there (Debian images often link resolv.conf) is removed, not followed,
//! and the new file is created with O_EXCL, which does not follow one.
//! The root is an overlay, so removing a lower-layer file is fine.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mvm_launch::net::Layout;

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct EtcError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Writes `etc/hosts` and `etc/resolv.conf` under `root`.
pub fn write(root: &Path, layout: &Layout) -> Result<(), EtcError> {
    let etc = root.join("etc");
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EtcError { path, source }
    };
    match etc.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(EtcError {
                path: etc,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a directory (a symlinked /etc is not followed); the image must have a real /etc",
                ),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir(&etc).map_err(failed(&etc))?;
        }
        Err(e) => return Err(failed(&etc)(e)),
    }
    for (name, text) in [
        ("hosts", layout.hosts_file()),
        ("resolv.conf", layout.resolv_conf()),
    ] {
        let path = etc.join(name);
        replace(&path, text.as_bytes()).map_err(failed(&path))?;
    }
    Ok(())
}

fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use mvm_launch::Dns;

    use super::*;

    fn layout() -> Layout {
        let net = super::super::policy::tests::network(&[("pypi.org", 443)], Dns::System, &[]);
        Layout::of(&net).unwrap()
    }

    #[test]
    fn writes_both_files_creating_etc() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), &layout()).unwrap();
        let hosts = std::fs::read_to_string(root.path().join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.0.2.101\tpypi.org\t"));
        let resolv = std::fs::read_to_string(root.path().join("etc/resolv.conf")).unwrap();
        assert!(resolv.contains("nameserver 10.0.2.99\n"));
        let mode = std::fs::metadata(root.path().join("etc/hosts"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn replaces_symlinks_and_old_files_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let outside = dir.path().join("outside-hosts");
        std::fs::write(&outside, "keep me\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/hosts")).unwrap();
        // A dangling link, as Debian's resolv.conf -> /run/... often is.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("etc/resolv.conf"))
            .unwrap();
        write(&root, &layout()).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me\n");
        assert!(!dir.path().join("nowhere").exists());
        for name in ["hosts", "resolv.conf"] {
            let meta = root.join("etc").join(name).symlink_metadata().unwrap();
            assert!(meta.is_file(), "{name} is a regular file now");
        }
        assert!(
            std::fs::read_to_string(root.join("etc/hosts"))
                .unwrap()
                .contains("pypi.org")
        );
        // Again over the files it wrote: replaced, not appended to.
        write(&root, &layout()).unwrap();
        let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
        assert_eq!(hosts.matches("pypi.org").count(), 1);
    }

    #[test]
    fn refuses_a_symlinked_etc() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("etc")).unwrap();
        let e = write(&root, &layout()).unwrap_err();
        assert!(e.to_string().contains("etc"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
