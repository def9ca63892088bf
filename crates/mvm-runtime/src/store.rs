//! What mvm keeps on disk and what uses it: images (with their template
//! snapshots), instances and tagged snapshots under the mvm home, and the
//! download cache. `mvmctl image list/rm`, `prune`, `cache clean` and
//! doctor's sizes are built on it.
//!
//! Nothing in use is removed. An image is in use while an instance record
//! or a tagged snapshot names it; a cache entry while an instance or a
//! tagged snapshot boots from a file in it. Builds and `up` hold the
//! store's shared lock until a name or a record marks what they made or
//! use, and every removal here holds the exclusive one, so a removal
//! never races a build or an `up` into deleting what it is about to
//! name. Every removal renames first and deletes after: killed at any
//! point, it leaves a store `image list` reads and the next prune tidies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mvm_image::{Store, StoreLock, disk_usage};
use serde::Serialize;

use crate::error::RuntimeError;
use crate::name::InstanceName;
use crate::snapshot::{self, Saved};
use crate::state::{self, ImageRef, Observed};

/// One image as `mvmctl image list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRow {
    pub id: String,
    /// The names that point to it (a rebuild moves a name to the new image).
    pub names: Vec<String>,
    /// The app name it was built for.
    pub workload: String,
    /// Bytes on disk, its template snapshots included.
    pub size_bytes: u64,
    pub created_unix: u64,
    /// `instance NAME` and `snapshot TAG` for everything that needs it.
    pub used_by: Vec<String>,
    /// Template snapshots saved for it (one per machine shape).
    pub templates: usize,
}

/// One thing a removal took (or, in a dry run, would take).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// `image`, `name`, `instance`, `snapshot`, `template`, `leftover` or `cache`.
    pub kind: String,
    pub what: String,
    pub bytes: u64,
}

/// Something a removal looked at and left, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub what: String,
    pub why: String,
}

/// What `image rm`, `prune` or `cache clean` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub removed: Vec<Removed>,
    pub kept: Vec<Kept>,
    pub freed_bytes: u64,
    /// What could not be removed, and why; the rest went on (exit 1).
    pub errors: Vec<String>,
}

impl Report {
    fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            ..Report::default()
        }
    }

    fn remove(&mut self, kind: &str, what: impl Into<String>, bytes: u64) {
        self.removed.push(Removed {
            kind: kind.into(),
            what: what.into(),
            bytes,
        });
        self.freed_bytes += bytes;
    }

    fn failed(&mut self, what: impl std::fmt::Display, e: impl std::fmt::Display) {
        self.errors.push(format!("{what}: {e}"));
    }

    fn keep(&mut self, what: impl Into<String>, why: impl Into<String>) {
        self.kept.push(Kept {
            what: what.into(),
            why: why.into(),
        });
    }
}

/// Bytes on disk per area, for `mvmctl doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub images: usize,
    pub images_bytes: u64,
    pub instances: usize,
    pub instances_bytes: u64,
    pub snapshots: usize,
    pub snapshots_bytes: u64,
    pub cache_dir: Option<PathBuf>,
    pub cache_bytes: u64,
    /// Free space on the file system that holds the mvm home.
    pub free_bytes: Option<u64>,
}

fn store_error(e: mvm_image::ImageError) -> RuntimeError {
    RuntimeError::Store {
        detail: e.to_string(),
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> RuntimeError {
    move |source| RuntimeError::Io { what, source }
}

/// The store's shared lock for an `up` of `image`, checked to still be
/// there: a removal may have run between the caller's lookup and now.
pub(crate) fn using_images(home: &Path, image: &ImageRef) -> Result<StoreLock, RuntimeError> {
    let lock = hold(home)?;
    if !image.rootfs.is_file() {
        return Err(RuntimeError::ImageNotFound {
            detail: format!("image {} ({}) was removed", short(&image.id), image.name),
            hint: "build it again with `mvmctl build`".into(),
        });
    }
    Ok(lock)
}

/// The store's shared lock, for a caller about to prepare what an `up`
/// uses (boot assets in the cache, an image lookup): `cache clean` and
/// removals wait for it to be dropped.
pub fn hold(home: &Path) -> Result<StoreLock, RuntimeError> {
    Store::new(home).lock_shared().map_err(store_error)
}

/// Refuses boot files that are gone (a `cache clean` that ran before the
/// caller took the store lock): QEMU would fail later, less clearly.
pub(crate) fn check_boot_files(kernel: &Path, initrd: &Path) -> Result<(), RuntimeError> {
    for (what, path) in [("kernel", kernel), ("initramfs", initrd)] {
        if !path.is_file() {
            return Err(RuntimeError::GuestAssets {
                detail: format!(
                    "the guest {what} {} is gone (was the cache cleaned?); run the command again",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

fn exclusive(home: &Path) -> Result<StoreLock, RuntimeError> {
    Store::new(home)
        .try_lock_exclusive()
        .map_err(store_error)?
        .ok_or(RuntimeError::StoreBusy)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Who needs what: images by id, and boot files by path.
#[derive(Default)]
struct Users {
    images: BTreeMap<String, Vec<String>>,
    /// Kernel and initramfs paths instances and tagged snapshots boot from.
    files: Vec<(PathBuf, String)>,
}

fn users(home: &Path, skip_instances: &BTreeSet<String>) -> Result<Users, RuntimeError> {
    let mut users = Users::default();
    for (dir, st) in state::list(home)? {
        let name = dir.name.to_string();
        if skip_instances.contains(&name) {
            continue;
        }
        let who = format!("instance {name}");
        match st {
            Ok(st) => users.add(
                &who,
                &st.image.id,
                &st.persist.vm.kernel,
                &st.persist.vm.initrd,
            ),
            // A record this mvm cannot read (another version's, or
            // edited) still says what it uses, as plain JSON: that is
            // kept for it. Nothing else is done with what it says.
            Err(_) => users.add_loose(&who, &read_json(&dir.state_json()), &["persist"]),
        }
    }
    for (tag, saved) in tagged(home)? {
        let who = format!("snapshot {tag}");
        match saved {
            Some(saved) => users.add(
                &who,
                &saved.image.id,
                &saved.persist.vm.kernel,
                &saved.persist.vm.initrd,
            ),
            // One that fails its seal now (a changed key, another
            // version) keeps what its manifest names, so it is not made
            // unrestorable on top.
            None => {
                let manifest =
                    read_json(&snapshot::tagged_root(home).join(&tag).join("manifest.json"));
                users.add_loose(&who, &manifest, &["payload", "persist"]);
            }
        }
    }
    Ok(users)
}

impl Users {
    fn add(&mut self, who: &str, image: &str, kernel: &Path, initrd: &Path) {
        self.images
            .entry(image.to_string())
            .or_default()
            .push(who.to_string());
        self.files.push((kernel.to_path_buf(), who.to_string()));
        self.files.push((initrd.to_path_buf(), who.to_string()));
    }

    /// What an unparsable record or manifest appears to use: `image.id`
    /// beside the last key of `at` and `vm.{kernel,initrd}` under it
    /// (`["persist"]` for a record, `["payload", "persist"]` for a
    /// snapshot manifest).
    fn add_loose(&mut self, who: &str, v: &serde_json::Value, at: &[&str]) {
        let (last, parents) = at.split_last().expect("a path");
        let base = parents.iter().fold(v, |v, k| &v[*k]);
        if let Some(id) = base["image"]["id"].as_str() {
            self.images
                .entry(id.to_string())
                .or_default()
                .push(who.to_string());
        }
        for file in ["kernel", "initrd"] {
            if let Some(path) = base[*last]["vm"][file].as_str() {
                self.files.push((PathBuf::from(path), who.to_string()));
            }
        }
    }
}

/// A file as JSON, or `null` when it is missing, too large or not JSON.
fn read_json(path: &Path) -> serde_json::Value {
    use std::io::Read;
    let mut text = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(16 << 20).read_to_end(&mut text));
    match read {
        Ok(_) => serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

/// Every tagged snapshot with what it would recreate; `None` for one that
/// fails its seal or does not describe an instance (it restores nothing,
/// so it keeps nothing alive; `snapshot list` shows why).
fn tagged(home: &Path) -> Result<Vec<(String, Option<Saved>)>, RuntimeError> {
    let root = snapshot::tagged_root(home);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let key = snapshot::seal_key(home)?;
    Ok(mvm_snapshot::list(&root, &key)
        .map_err(snapshot::snapshot_error)?
        .into_iter()
        .map(|(tag, opened)| {
            let saved = opened
                .ok()
                .and_then(|s| serde_json::from_value(s.manifest().payload.clone()).ok());
            (tag, saved)
        })
        .collect())
}

fn templates_dir(image: &mvm_image::ImageRef) -> PathBuf {
    image.dir.join("templates")
}

fn template_count(image: &mvm_image::ImageRef) -> usize {
    std::fs::read_dir(templates_dir(image))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

/// Every image in the store with its names, size and users.
pub fn images(home: &Path) -> Result<Vec<ImageRow>, RuntimeError> {
    let store = Store::new(home);
    let users = users(home, &BTreeSet::new())?;
    let names = store.names();
    Ok(store
        .list()
        .into_iter()
        .map(|image| ImageRow {
            names: names
                .iter()
                .filter(|(_, id)| *id == image.id)
                .map(|(n, _)| n.clone())
                .collect(),
            workload: image.meta.name.clone(),
            size_bytes: disk_usage(&image.dir),
            created_unix: image.meta.created_unix,
            used_by: users.images.get(&image.id).cloned().unwrap_or_default(),
            templates: template_count(&image),
            id: image.id,
        })
        .collect())
}

/// What `mvmctl image inspect` shows: the image's record and its lock.
#[derive(Debug, Clone, Serialize)]
pub struct Inspected {
    #[serde(flatten)]
    pub row: ImageRow,
    pub dir: PathBuf,
    /// `image.lock` as written by the build (docs/images.md).
    pub lock: serde_json::Value,
}

pub fn inspect(home: &Path, target: &str) -> Result<Inspected, RuntimeError> {
    let image = resolve(home, target)?;
    let row = images(home)?
        .into_iter()
        .find(|r| r.id == image.id)
        .ok_or_else(|| not_found(target))?;
    let text =
        std::fs::read(&image.lock).map_err(io(format!("reading {}", image.lock.display())))?;
    let lock = serde_json::from_slice(&text).map_err(|e| RuntimeError::Store {
        detail: format!("{} is not JSON: {e}", image.lock.display()),
    })?;
    Ok(Inspected {
        row,
        dir: image.dir,
        lock,
    })
}

fn not_found(target: &str) -> RuntimeError {
    RuntimeError::ImageNotFound {
        detail: format!("no image `{target}` in the store"),
        hint: "`mvmctl image list` lists images by name and id".into(),
    }
}

fn resolve(home: &Path, target: &str) -> Result<mvm_image::ImageRef, RuntimeError> {
    // Only names and ids here: a directory argument would make `image rm
    // out` remove whatever that compile output's names point to.
    Store::new(home)
        .resolve_stored(target)
        .map_err(|_| not_found(target))
}

/// `mvmctl image rm`: removes an image nothing uses, or with `force` also
/// the instances (stopped) and tagged snapshots that use it.
pub fn remove_image(
    home: &Path,
    target: &str,
    force: bool,
    grace: Duration,
) -> Result<Report, RuntimeError> {
    let _lock = exclusive(home)?;
    let image = resolve(home, target)?;
    let mut report = Report::new(false);
    let using = users(home, &BTreeSet::new())?
        .images
        .remove(&image.id)
        .unwrap_or_default();
    if !using.is_empty() && !force {
        return Err(RuntimeError::ImageInUse {
            image: format!("{} ({})", short(&image.id), image.meta.name),
            users: using,
        });
    }
    for who in using {
        if let Some(name) = who.strip_prefix("instance ") {
            let dir = crate::home::InstanceDir::new(home, InstanceName::parse(name)?);
            let bytes = disk_usage(&dir.dir);
            match crate::down::down(home, &dir.name, grace) {
                Ok(_) => report.remove("instance", name, bytes),
                Err(e) => report.failed(&who, e),
            }
        } else if let Some(tag) = who.strip_prefix("snapshot ") {
            let bytes = disk_usage(&snapshot::tagged_root(home).join(tag));
            match snapshot::remove(home, tag) {
                Ok(()) => report.remove("snapshot", tag, bytes),
                Err(e) => report.failed(&who, e),
            }
        }
    }
    if !report.errors.is_empty() {
        // Something that uses it is still there: the image stays.
        report.keep(
            format!("{} ({})", short(&image.id), image.meta.name),
            "not all of its users could be removed",
        );
        return Ok(report);
    }
    let store = Store::new(home);
    for (name, id) in store.names() {
        if id == image.id {
            report.remove("name", name, 0);
        }
    }
    let bytes = store.remove(&image.id).map_err(store_error)?;
    report.remove(
        "image",
        format!("{} ({})", short(&image.id), image.meta.name),
        bytes,
    );
    Ok(report)
}

/// `mvmctl prune`: dead instances' leftovers, names of images that are
/// gone, images no name points to and nothing uses, template snapshots
/// no `up` here can restore any more, and what killed builds, removals
/// and snapshots left behind.
pub fn prune(home: &Path, dry_run: bool) -> Result<Report, RuntimeError> {
    let _lock = exclusive(home)?;
    let mut report = Report::new(dry_run);

    // Instances first: what a dead one used is free once it is gone.
    let mut gone = BTreeSet::new();
    for (dir, st) in state::list(home)? {
        match &st {
            Ok(st) if crate::lifecycle::resumable(&dir, st) => {
                if st.observe() == Observed::Dead {
                    report.keep(
                        format!("instance {}", dir.name),
                        format!(
                            "a resume was interrupted; `mvmctl resume {}` brings it back",
                            dir.name
                        ),
                    );
                }
                continue;
            }
            Ok(st) if st.observe() == Observed::Dead => {}
            Ok(_) => continue,
            // Another version's record, or damaged: its processes may
            // still run, and only its owner can tell.
            Err(e) => {
                report.keep(
                    format!("instance {}", dir.name),
                    format!(
                        "its record is unreadable ({e}); `mvmctl down {}` removes it",
                        dir.name
                    ),
                );
                continue;
            }
        }
        let bytes = disk_usage(&dir.dir);
        if !dry_run && let Err(e) = crate::down::down(home, &dir.name, crate::down::DEFAULT_GRACE) {
            report.failed(format!("instance {}", dir.name), e);
            continue;
        }
        report.remove("instance", format!("{} (dead)", dir.name), bytes);
        gone.insert(dir.name.to_string());
    }

    let store = Store::new(home);
    let users = users(home, &gone)?;
    let present: BTreeSet<String> = store.list().into_iter().map(|i| i.id).collect();
    let names = store.names();
    for (name, id) in &names {
        if !present.contains(id) {
            if !dry_run && let Err(e) = store.unset_name(name) {
                report.failed(format!("name {name}"), e);
                continue;
            }
            report.remove("name", format!("{name} (its image is gone)"), 0);
        }
    }
    let named: BTreeSet<&String> = names.iter().map(|(_, id)| id).collect();
    let host = HostNow::probe();
    for image in store.list() {
        let label = format!("{} ({})", short(&image.id), image.meta.name);
        if !named.contains(&image.id) {
            if let Some(who) = users.images.get(&image.id) {
                report.keep(
                    label.clone(),
                    format!("unnamed but used by {}", who.join(", ")),
                );
            } else {
                let bytes = if dry_run {
                    Ok(disk_usage(&image.dir))
                } else {
                    store.remove(&image.id)
                };
                match bytes {
                    Ok(bytes) => {
                        report.remove("image", format!("{label} (no name points to it)"), bytes)
                    }
                    Err(e) => report.failed(format!("image {label}"), e),
                }
                continue;
            }
        }
        if let Err(e) = prune_templates(&image, &label, &host, home, dry_run, &mut report) {
            report.failed(format!("templates of {label}"), e);
        }
    }

    for (path, bytes) in store.leftovers() {
        if !dry_run && let Err(e) = remove_any(&path) {
            report.failed(path.display(), e);
            continue;
        }
        report.remove("leftover", path.display().to_string(), bytes);
    }
    let snapshots = snapshot::tagged_root(home);
    for path in snapshot_leftovers(&snapshots) {
        let bytes = disk_usage(&path);
        report.remove("leftover", path.display().to_string(), bytes);
    }
    if !dry_run && let Err(e) = mvm_snapshot::clean_staging(&snapshots) {
        report.failed(snapshots.display(), e);
    }
    Ok(report)
}

/// What a restore on this host depends on now, to tell which templates
/// no `up` here can use any more.
struct HostNow {
    vmm: Option<String>,
}

impl HostNow {
    fn probe() -> HostNow {
        HostNow {
            vmm: mvm_vmm::backend(mvm_vmm::Backend::default())
                .identity()
                .ok(),
        }
    }

    /// Why a template bound to `bindings` cannot be restored here, if so.
    fn stale(&self, bindings: &BTreeMap<String, String>) -> Option<String> {
        if bindings.get("mvm").map(String::as_str) != Some(env!("CARGO_PKG_VERSION")) {
            return Some("saved by another mvm version".into());
        }
        if let (Some(now), Some(then)) = (&self.vmm, bindings.get("vmm"))
            && now != then
        {
            return Some("saved with another QEMU".into());
        }
        for file in ["kernel", "initrd", "rootfs"] {
            let Some(bound) = bindings.get(file) else {
                continue;
            };
            // `PATH size=N mtime=S.NS`: the file as it was, compared with
            // the file at that path now.
            let path = bound.split(" size=").next().unwrap_or_default();
            if snapshot::file_identity(Path::new(path)).ok().as_deref() != Some(bound.as_str()) {
                return Some(format!("its {file} changed or is gone"));
            }
        }
        None
    }
}

fn prune_templates(
    image: &mvm_image::ImageRef,
    label: &str,
    host: &HostNow,
    home: &Path,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), RuntimeError> {
    let parent = templates_dir(image);
    if !parent.is_dir() {
        return Ok(());
    }
    let key = snapshot::seal_key(home)?;
    for (name, opened) in mvm_snapshot::list(&parent, &key).map_err(snapshot::snapshot_error)? {
        let why = match &opened {
            Ok(s) => match host.stale(&s.manifest().bindings) {
                Some(why) => why,
                None => continue,
            },
            Err(e) => format!("unusable: {e}"),
        };
        let dir = parent.join(&name);
        let bytes = disk_usage(&dir);
        if !dry_run {
            mvm_snapshot::remove(&dir).map_err(snapshot::snapshot_error)?;
        }
        report.remove("template", format!("{label} {name} ({why})"), bytes);
    }
    for path in snapshot_leftovers(&parent) {
        let bytes = disk_usage(&path);
        report.remove("leftover", path.display().to_string(), bytes);
    }
    if !dry_run {
        mvm_snapshot::clean_staging(&parent).map_err(snapshot::snapshot_error)?;
    }
    Ok(())
}

/// What `mvm_snapshot::clean_staging` would remove under `parent`.
fn snapshot_leftovers(parent: &Path) -> Vec<PathBuf> {
    mvm_snapshot::leftovers(parent).unwrap_or_default()
}

fn remove_any(path: &Path) -> Result<(), RuntimeError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(io(format!("removing {}", path.display())))
}

/// Prefix of cache entries a clean has taken away but not yet deleted.
const CACHE_TRASH: &str = ".removing-";

/// `mvmctl cache clean`: removes the download cache (kernels, base
/// roots, wheels, the agent initramfs: all fetched or built again on
/// demand) except what an instance or tagged snapshot boots from.
pub fn cache_clean(home: &Path, cache_dir: &Path, dry_run: bool) -> Result<Report, RuntimeError> {
    let _lock = exclusive(home)?;
    let mut report = Report::new(dry_run);
    let users = users(home, &BTreeSet::new())?;
    let used_by = |entry: &Path| -> Option<String> {
        let canonical = std::fs::canonicalize(entry).ok();
        users
            .files
            .iter()
            .filter(|(file, _)| {
                file.starts_with(entry)
                    || std::fs::canonicalize(file)
                        .ok()
                        .zip(canonical.as_ref())
                        .is_some_and(|(f, e)| f.starts_with(e))
            })
            .map(|(_, who)| who.clone())
            .next()
    };
    let mut n = 0u32;
    for top in read_sorted(cache_dir) {
        let top_name = top
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // Entries are judged one level down (kernel/<version>,
        // rootfs/<key>, ...): a kernel in use keeps its own directory,
        // not the whole cache.
        // A symlink is one entry (only the link goes), whatever it points to.
        let is_dir = std::fs::symlink_metadata(&top).is_ok_and(|m| m.is_dir());
        let children = if is_dir && !top_name.starts_with(CACHE_TRASH) {
            read_sorted(&top)
        } else {
            vec![top.clone()]
        };
        for entry in children {
            if let Some(who) = used_by(&entry) {
                report.keep(entry.display().to_string(), format!("used by {who}"));
                continue;
            }
            let bytes = disk_usage(&entry);
            if !dry_run {
                n += 1;
                let trash = cache_dir.join(format!("{CACHE_TRASH}{}-{n}", std::process::id()));
                let removed = std::fs::rename(&entry, &trash)
                    .map_err(io(format!("moving {} out of the cache", entry.display())))
                    .and_then(|()| remove_any(&trash));
                if let Err(e) = removed {
                    report.failed(entry.display(), e);
                    continue;
                }
            }
            report.remove("cache", entry.display().to_string(), bytes);
        }
    }
    Ok(report)
}

fn read_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Sizes of the store, instances, snapshots and cache, and the free space
/// where they live.
pub fn usage(home: &Path, cache_dir: Option<&Path>) -> Result<Usage, RuntimeError> {
    let store = Store::new(home);
    let images = store.list();
    let instances = state::list(home)?;
    let snapshots = tagged(home).unwrap_or_default();
    Ok(Usage {
        images: images.len(),
        images_bytes: disk_usage(store.root()),
        instances: instances.len(),
        instances_bytes: disk_usage(&crate::home::instances_root(home)),
        snapshots: snapshots.len(),
        snapshots_bytes: disk_usage(&snapshot::tagged_root(home)),
        cache_dir: cache_dir.map(Path::to_path_buf),
        cache_bytes: cache_dir.map(disk_usage).unwrap_or(0),
        free_bytes: free_bytes(home),
    })
}

pub use mvm_image::free_bytes;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ProcessRef;
    use crate::state::{InstanceState, Start, Status};

    /// A process that existed and is gone (reaped), as a crashed
    /// supervisor's record names it.
    fn dead_process() -> ProcessRef {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let alive = ProcessRef::of(pid);
        child.wait().unwrap();
        alive.unwrap_or(ProcessRef {
            pid,
            start_ticks: 1,
        })
    }

    fn record(home: &Path, name: &str, edit: impl FnOnce(&mut InstanceState)) -> PathBuf {
        let dir = crate::home::instances_root(home).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut st = state::tests::sample(name);
        st.supervisor = Some(dead_process());
        st.qemu = Some(dead_process());
        edit(&mut st);
        st.save(&dir.join("state.json")).unwrap();
        dir
    }

    #[test]
    fn prune_takes_dead_instances_but_not_an_interrupted_resume() {
        let home = tempfile::tempdir().unwrap();
        let crashed = record(home.path(), "crashed", |_| {});
        let resuming = record(home.path(), "resuming", |st| {
            st.status = Status::Starting;
            st.start = Start::Resume;
        });
        std::fs::create_dir_all(resuming.join("paused")).unwrap();
        // The same, without its paused state: nothing to resume, dead.
        let lost = record(home.path(), "lost", |st| {
            st.status = Status::Starting;
            st.start = Start::Resume;
        });
        let report = prune(home.path(), false).unwrap();
        let instances: Vec<&str> = report
            .removed
            .iter()
            .filter(|r| r.kind == "instance")
            .map(|r| r.what.as_str())
            .collect();
        assert_eq!(instances, ["crashed (dead)", "lost (dead)"], "{report:?}");
        assert!(!crashed.exists() && !lost.exists());
        assert!(resuming.join("state.json").is_file());
        assert!(
            report
                .kept
                .iter()
                .any(|k| k.what == "instance resuming" && k.why.contains("mvmctl resume resuming")),
            "{report:?}"
        );
    }

    fn bindings(kernel: &Path) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("mvm".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("vmm".to_string(), "qemu 1".to_string()),
            (
                "kernel".to_string(),
                snapshot::file_identity(kernel).unwrap(),
            ),
        ])
    }

    #[test]
    fn a_template_is_stale_when_what_it_restores_onto_changed() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("vmlinuz");
        std::fs::write(&kernel, b"one").unwrap();
        let host = HostNow {
            vmm: Some("qemu 1".into()),
        };
        let b = bindings(&kernel);
        assert_eq!(host.stale(&b), None);

        let mut other = b.clone();
        other.insert("mvm".into(), "0.0.0-other".into());
        assert_eq!(
            host.stale(&other).as_deref(),
            Some("saved by another mvm version")
        );
        let newer = HostNow {
            vmm: Some("qemu 2".into()),
        };
        assert_eq!(newer.stale(&b).as_deref(), Some("saved with another QEMU"));

        std::fs::write(&kernel, b"two, longer").unwrap();
        assert_eq!(
            host.stale(&b).as_deref(),
            Some("its kernel changed or is gone")
        );
        std::fs::remove_file(&kernel).unwrap();
        assert_eq!(
            host.stale(&b).as_deref(),
            Some("its kernel changed or is gone")
        );
    }
}
