//! The content-addressed image store under `$MVM_HOME/images`:
//!
//! ```text
//! images/<image-id>/{rootfs.ext4, image.lock, launch.json, meta.json, build.log}
//! images/names/<name>        the id of the newest build of a workload name
//! images/.tmp/               staging; complete images are renamed out of it
//! store.lock (in the home)  builds and `up` hold it shared, removals exclusive
//! ```
//!
//! An image directory appears only by one `rename` of a complete staging
//! directory, so a reader never sees half an image and a failed build
//! leaves nothing behind. `meta.json` is written last inside staging and
//! marks an image as complete. Removal is the same in reverse: its names
//! go first, then one `rename` into `.tmp/` takes the image away, and
//! only then is it deleted, so a removal killed at any point leaves a
//! store every reader understands (and leftovers the next prune takes).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::error::ImageError;

pub const ROOTFS: &str = "rootfs.ext4";
pub const IMAGE_LOCK: &str = "image.lock";
pub const LAUNCH_JSON: &str = mvm_launch::FILE_NAME;
pub const META_JSON: &str = "meta.json";
pub const BUILD_LOG: &str = "build.log";
const NAMES: &str = "names";
const STAGING: &str = ".tmp";
/// In the mvm home, beside `images/`.
const LOCK: &str = "store.lock";

/// A held store lock (`flock` on `$MVM_HOME/store.lock`), released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: std::fs::File,
}

/// What `meta.json` records about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub image_id: String,
    /// The app name (what `mvmctl up NAME` uses).
    pub name: String,
    pub workload_id: String,
    pub ir_hash: String,
    /// sha256 of the compile output's SHA256SUMS.
    pub sums_sha256: String,
    pub base_key: String,
    pub builder: String,
    pub size_bytes: u64,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
}

/// A complete image in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub id: String,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub lock: PathBuf,
    pub launch_json: PathBuf,
    pub meta: Meta,
}

pub struct Store {
    root: PathBuf,
}

fn is_image_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Workload names are IR ids (`^[a-z][a-z0-9-]{0,62}$`), so they are safe file names.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Store {
    /// The store of the mvm home directory `home`.
    pub fn new(home: &Path) -> Store {
        Store {
            root: home.join("images"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn staging_root(&self) -> PathBuf {
        self.root.join(STAGING)
    }

    /// A fresh staging directory, removed when dropped unless committed.
    pub fn staging(&self) -> Result<TempDir, ImageError> {
        let dir = self.staging_root();
        private_dir_all(&self.root).map_err(ImageError::io(&self.root))?;
        private_dir_all(&dir).map_err(ImageError::io(&dir))?;
        tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&dir)
            .map_err(ImageError::io(&dir))
    }

    /// Held by whatever may start using an image (a build until it has
    /// named it, an `up` until its record names it); blocks while a
    /// removal runs.
    pub fn lock_shared(&self) -> Result<StoreLock, ImageError> {
        self.lock(rustix::fs::FlockOperation::LockShared)
            .map(|l| l.expect("a blocking lock is granted"))
    }

    /// Held by a removal; `None` while a build or `up` holds the shared lock.
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>, ImageError> {
        self.lock(rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    fn lock(&self, how: rustix::fs::FlockOperation) -> Result<Option<StoreLock>, ImageError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // Beside the store, not in it: a build refused before it starts
        // leaves no store behind.
        let home = self.root.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)
            .map_err(ImageError::io(home))?;
        let path = home.join(LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(ImageError::io(&path))?;
        match rustix::fs::flock(&file, how) {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(ImageError::Io {
                path,
                source: e.into(),
            }),
        }
    }

    /// Every complete image, sorted by id; directories without a
    /// readable `meta.json` (not images, or damaged) are left out.
    pub fn list(&self) -> Vec<ImageRef> {
        let mut out: Vec<ImageRef> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| self.get(&n))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Every name with the id it points to (which may be gone), sorted.
    pub fn names(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(self.root.join(NAMES))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok().filter(|n| is_name(n))?;
                let id = std::fs::read_to_string(e.path()).ok()?;
                Some((name, id.trim().to_string()))
            })
            .collect();
        out.sort();
        out
    }

    /// Removes the name `name` (not the image it points to).
    pub fn unset_name(&self, name: &str) -> Result<(), ImageError> {
        if !is_name(name) {
            return Ok(());
        }
        let path = self.root.join(NAMES).join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::Io { path, source: e }),
        }
    }

    /// Removes image `id` and every name pointing to it; returns the bytes
    /// it took. The caller holds the exclusive lock and has checked that
    /// nothing uses it.
    pub fn remove(&self, id: &str) -> Result<u64, ImageError> {
        if !is_image_id(id) {
            return Err(ImageError::NotFound {
                target: id.to_string(),
                store: self.root.clone(),
                hint: "an image id is 64 lowercase hex digits".into(),
            });
        }
        for (name, points_to) in self.names() {
            if points_to == id {
                self.unset_name(&name)?;
            }
        }
        let dir = self.root.join(id);
        let bytes = disk_usage(&dir);
        let staging = self.staging_root();
        private_dir_all(&staging).map_err(ImageError::io(&staging))?;
        let trash = staging.join(format!("rm-{id}-{}", std::process::id()));
        std::fs::rename(&dir, &trash).map_err(ImageError::io(&dir))?;
        std::fs::remove_dir_all(&trash).map_err(ImageError::io(&trash))?;
        Ok(bytes)
    }

    /// What is left in `.tmp/` (builds and removals that were killed) and
    /// the bytes it takes. Only meaningful under the exclusive lock, when
    /// no build is running.
    pub fn leftovers(&self) -> Vec<(PathBuf, u64)> {
        std::fs::read_dir(self.staging_root())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let path = e.path();
                let bytes = disk_usage(&path);
                (path, bytes)
            })
            .collect()
    }

    /// The complete image `id`, if present.
    pub fn get(&self, id: &str) -> Option<ImageRef> {
        if !is_image_id(id) {
            return None;
        }
        let dir = self.root.join(id);
        let meta: Meta = serde_json::from_slice(&std::fs::read(dir.join(META_JSON)).ok()?).ok()?;
        Some(ImageRef {
            id: id.to_string(),
            rootfs: dir.join(ROOTFS),
            lock: dir.join(IMAGE_LOCK),
            launch_json: dir.join(LAUNCH_JSON),
            meta,
            dir,
        })
    }

    /// Moves a complete image directory into the store as `id`. If another
    /// build committed the same id first, its image is kept (same inputs,
    /// same image) and `complete` is left for the caller to drop.
    pub fn commit(&self, complete: &Path, id: &str) -> Result<ImageRef, ImageError> {
        let dest = self.root.join(id);
        if let Err(e) = std::fs::rename(complete, &dest)
            && self.get(id).is_none()
        {
            return Err(ImageError::Io {
                path: dest,
                source: e,
            });
        }
        self.get(id).ok_or_else(|| ImageError::NotFound {
            target: id.to_string(),
            store: self.root.clone(),
            hint: "the image vanished right after it was stored; build again".into(),
        })
    }

    /// Points `name` at image `id` (atomically replacing an older build).
    pub fn set_name(&self, name: &str, id: &str) -> Result<(), ImageError> {
        if !is_name(name) {
            return Ok(());
        }
        let names = self.root.join(NAMES);
        private_dir_all(&names).map_err(ImageError::io(&names))?;
        // Unique per call: two threads naming images at once must not share it.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = names.join(format!(".{name}.{}.{n}", std::process::id()));
        private_write(&tmp, format!("{id}\n").as_bytes()).map_err(ImageError::io(&tmp))?;
        let dest = names.join(name);
        std::fs::rename(&tmp, &dest).map_err(ImageError::io(&dest))
    }

    fn by_name(&self, name: &str) -> Option<ImageRef> {
        if !is_name(name) {
            return None;
        }
        let id = std::fs::read_to_string(self.root.join(NAMES).join(name)).ok()?;
        self.get(id.trim())
    }

    /// Resolves an image id, a unique id prefix (8+ digits), a workload's app
    /// name or workload id, or a compile output directory (by the names in
    /// its launch.json) to an image.
    pub fn resolve(&self, target: &str) -> Result<ImageRef, ImageError> {
        if let Some(image) = self.get(target).or_else(|| self.by_name(target)) {
            return Ok(image);
        }
        let as_dir = Path::new(target);
        if as_dir.join(LAUNCH_JSON).is_file() {
            let path = as_dir.join(LAUNCH_JSON);
            // A compile output is untrusted: its launch.json is read without
            // following links, through the contract's parser, and only its
            // names are used, to look up.
            let bad = |detail: String| ImageError::BadLaunch {
                path: path.clone(),
                detail,
            };
            let text = crate::tree::Tree::open(as_dir)
                .and_then(|t| t.read(Path::new(LAUNCH_JSON), mvm_launch::MAX_BYTES + 1))
                .map_err(|e| bad(e.to_string()))?;
            let names = mvm_launch::parse(&text).map_err(|e| bad(e.to_string()))?;
            return self
                .by_name(&names.app_name)
                .or_else(|| self.by_name(&names.workload_id))
                .ok_or_else(|| ImageError::NotFound {
                    target: target.to_string(),
                    store: self.root.clone(),
                    hint: format!(
                        "workload `{}` has not been built; run `mvmctl build {target}`",
                        names.app_name
                    ),
                });
        }
        self.resolve_stored(target)
    }

    /// Resolves only what the store itself names: an image id, a unique
    /// id prefix (8+ digits) or a name; never a directory (removing "the
    /// image of ./out" must not depend on what ./out says).
    pub fn resolve_stored(&self, target: &str) -> Result<ImageRef, ImageError> {
        if let Some(image) = self.get(target).or_else(|| self.by_name(target)) {
            return Ok(image);
        }
        if target.len() >= 8 && target.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<String> = std::fs::read_dir(&self.root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_image_id(n) && n.starts_with(target))
                .collect();
            if let [only] = matches.as_slice()
                && let Some(image) = self.get(only)
            {
                return Ok(image);
            }
        }
        Err(ImageError::NotFound {
            target: target.to_string(),
            store: self.root.clone(),
            hint: "it is neither an image id nor the name of a built workload; build one with `mvmctl build COMPILED_DIR`".into(),
        })
    }
}

/// Bytes `path` takes on disk (allocated blocks: sparse files count what
/// they hold), not following symlinks; 0 when it is gone.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    own + std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| disk_usage(&e.path()))
        .sum::<u64>()
}

/// Free bytes (for unprivileged users) on the file system holding `path`
/// or its nearest existing parent.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = rustix::fs::statvfs(existing).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Creates `dir` and missing parents as 0700 (whatever the umask); the
/// store holds build logs and, while building, trees with the image's
/// set-id files, which no other local user should reach.
/// `dir` itself is made 0700 even if it existed (an older mvm made it 0755).
pub(crate) fn private_dir_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes `path` as a 0600 file, whatever the umask.
pub(crate) fn private_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}
