//! Base root filesystems: `mmdebstrap --variant=essential` plus the plan's
//! Debian packages and wheel binaries, cached under
//! `$MVM_CACHE_DIR/rootfs/<key>/` and keyed by the plan, so every workload
//! with the same package set shares one download and one install.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::buildlog::BuildLog;
use crate::digest::sha256_parts;
use crate::error::ImageError;
use crate::mirror::host_mirror;
use crate::table::{RootPlan, Suite};
use crate::wheel::{self, WheelFile};

/// Bumped whenever the recipe below changes what a root contains, so old
/// cache entries are not reused.
const RECIPE: &str = "mvm-base-root-4";

/// mmdebstrap's documented way to get merged /usr with the small
/// `usr-is-merged` package instead of `usrmerge`, which pulls in all of perl.
const MERGED_USR_HOOKS: &str = "/usr/share/mmdebstrap/hooks/merged-usr";

/// dpkg filters, kept in the root (`/etc/dpkg/dpkg.cfg.d/`) so later
/// installs obey them too: no docs (but keep copyright files), man pages,
/// info pages, translations or iconv modules (Python and Node carry their
/// own codecs).
const DPKG_FILTERS: &[&str] = &[
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*",
];

/// Removes what only the build needed.
const CLEANUP_HOOK: &str = r#"rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old"#;

/// Version of one installed Debian package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// What a base root holds, recorded when it is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseLock {
    pub key: String,
    pub suite: Suite,
    pub mirror: String,
    pub debian: Vec<DebPackage>,
    pub wheels: Vec<WheelFile>,
}

pub struct BaseRoot {
    pub root: PathBuf,
    pub lock: BaseLock,
}

const LOCK_FILE: &str = "base.lock.json";

/// The cache key of a plan's base root.
pub fn key(plan: &RootPlan) -> String {
    let plan_json = serde_json::to_vec(plan).expect("plans serialize");
    sha256_parts(&[("recipe", RECIPE.as_bytes()), ("plan", &plan_json)])
}

/// Exact Debian versions a `build --locked` must install, from the
/// image.lock at `lock`.
pub struct Pins<'a> {
    pub lock: &'a Path,
    pub debs: &'a [DebPackage],
}

impl Pins<'_> {
    fn error(&self, what: String, detail: String) -> ImageError {
        ImageError::Locked {
            lock: self.lock.to_path_buf(),
            what,
            detail,
            hint: "the mirror no longer offers what the lock records (snapshot.debian.org is not \
                   reachable here); build without --locked to take the current versions and \
                   compare the new image.lock"
                .into(),
        }
    }

    /// The lock's versions against what a root holds: the first package
    /// that differs, named.
    fn check(&self, installed: &[DebPackage], mirror: &str) -> Result<(), ImageError> {
        let have: std::collections::BTreeMap<&str, &DebPackage> =
            installed.iter().map(|d| (d.name.as_str(), d)).collect();
        let want: std::collections::BTreeMap<&str, &DebPackage> =
            self.debs.iter().map(|d| (d.name.as_str(), d)).collect();
        for (name, w) in &want {
            match have.get(name) {
                Some(h) if h.version == w.version && h.arch == w.arch => {}
                Some(h) => {
                    return Err(self.error(
                        format!("Debian package {name}"),
                        format!(
                            "locked at {} ({}), but {mirror} installed {} ({})",
                            w.version, w.arch, h.version, h.arch
                        ),
                    ));
                }
                None => {
                    return Err(self.error(
                        format!("Debian package {name}"),
                        format!("locked at {}, but it was not installed", w.version),
                    ));
                }
            }
        }
        if let Some(extra) = have.keys().find(|n| !want.contains_key(*n)) {
            return Err(self.error(
                format!("Debian package {extra}"),
                format!("installed from {mirror} but not in the lock"),
            ));
        }
        Ok(())
    }
}

/// The cached base root for `plan`, building it first if needed. With
/// `pins`, it must hold every Debian package at exactly its locked
/// version: a cached root is used when it does; otherwise a fresh one is
/// made from the mirror as usual (in a cache slot of its own when the
/// plan's slot is taken) and checked, and the first package the mirror no
/// longer has at its locked version is an error naming it. (Asking apt for
/// `name=version` instead would install the same files but mark every
/// package as manually installed, which changes the root; and a mirror
/// holds one version per package, so pinning could not fetch an older
/// one anyway.) The root's identity (`BaseLock::key`, part of the image
/// id) is `plan`'s either way. Concurrent builders of the same slot wait
/// for each other.
pub fn ensure(
    cache_dir: &Path,
    plan: &RootPlan,
    pins: Option<&Pins<'_>>,
    log: &mut BuildLog,
    on_build: impl FnOnce(),
) -> Result<BaseRoot, ImageError> {
    let key = key(plan);
    let roots = cache_dir.join("rootfs");
    std::fs::create_dir_all(&roots).map_err(ImageError::io(&roots))?;
    let dir = roots.join(&key);
    let found = load(&dir)?;
    let slot = match (pins, found) {
        (None, Some(found)) => return Ok(found),
        (None, None) => key.clone(),
        (Some(p), Some(found)) if p.check(&found.lock.debian, &found.lock.mirror).is_ok() => {
            return Ok(found);
        }
        (Some(_), None) => key.clone(),
        (Some(p), Some(_)) => {
            let pinned = serde_json::to_vec(p.debs).expect("packages serialize");
            sha256_parts(&[("base", key.as_bytes()), ("pins", &pinned)])
        }
    };
    let dir = roots.join(&slot);
    if let Some(found) = load(&dir)? {
        return Ok(found);
    }
    let lock_path = roots.join(format!("{slot}.lock"));
    let lock_file = std::fs::File::create(&lock_path).map_err(ImageError::io(&lock_path))?;
    rustix::fs::flock(&lock_file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        ImageError::Io {
            path: lock_path.clone(),
            source: e.into(),
        }
    })?;
    if let Some(found) = load(&dir)? {
        return Ok(found);
    }
    on_build();
    let mirror = host_mirror(Path::new("/etc/apt")).ok_or(ImageError::NoMirror)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{slot}.tmp"))
        .tempdir_in(&roots)
        .map_err(ImageError::io(&roots))?;
    let root = tmp.path().join("root");
    log.note(&format!(
        "base root {key}: Debian {} from {mirror}",
        plan.suite
    ));
    debootstrap(plan, &mirror, &root, log)?;
    let mut wheels = Vec::new();
    for req in &plan.wheels {
        let (file, path) = wheel::download(req, &cache_dir.join("wheels"), log)?;
        wheel::install(&path, req.layout, &root)?;
        wheels.push(file);
    }
    let lock = BaseLock {
        key: key.clone(),
        suite: plan.suite,
        mirror,
        debian: installed_debs(&root, log)?,
        wheels,
    };
    // Checked before the root is cached: a mismatch leaves it behind
    // only as a temporary directory, removed on return.
    if let Some(p) = pins {
        p.check(&lock.debian, &lock.mirror)?;
    }
    let lock_json = serde_json::to_vec_pretty(&lock).expect("locks serialize");
    let lock_out = tmp.path().join(LOCK_FILE);
    std::fs::write(&lock_out, lock_json).map_err(ImageError::io(&lock_out))?;
    let kept = tmp.keep();
    std::fs::rename(&kept, &dir).map_err(ImageError::io(&dir))?;
    Ok(BaseRoot {
        root: dir.join("root"),
        lock,
    })
}

fn load(dir: &Path) -> Result<Option<BaseRoot>, ImageError> {
    let path = dir.join(LOCK_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let lock = serde_json::from_slice(&bytes).map_err(|e| ImageError::BadLaunch {
                path: path.clone(),
                detail: format!(
                    "corrupt base-root cache entry ({e}); delete {}",
                    dir.display()
                ),
            })?;
            Ok(Some(BaseRoot {
                root: dir.join("root"),
                lock,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImageError::Io { path, source: e }),
    }
}

fn debootstrap(
    plan: &RootPlan,
    mirror: &str,
    root: &Path,
    log: &mut BuildLog,
) -> Result<(), ImageError> {
    let mut cmd = Command::new("mmdebstrap");
    cmd.arg("--variant=essential").arg("--format=directory");
    if !plan.debs.is_empty() {
        cmd.arg(format!(
            "--include={}",
            plan.debs.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    }
    if Path::new(MERGED_USR_HOOKS).is_dir() {
        cmd.arg(format!("--hook-dir={MERGED_USR_HOOKS}"));
    }
    for filter in DPKG_FILTERS {
        cmd.arg(format!("--dpkgopt={filter}"));
    }
    cmd.arg(format!("--customize-hook={CLEANUP_HOOK}"));
    cmd.arg(plan.suite.codename()).arg(root).arg(mirror);
    log.run(
        &format!("mmdebstrap (Debian {})", plan.suite),
        "mmdebstrap",
        "install it with `apt-get install mmdebstrap`",
        &mut cmd,
    )
}

/// Every Debian package in the root, read from its dpkg database.
fn installed_debs(root: &Path, log: &mut BuildLog) -> Result<Vec<DebPackage>, ImageError> {
    let admindir = root.join("var/lib/dpkg");
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args([
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n",
        ])
        .output()
        .map_err(|e| ImageError::MissingTool {
            tool: "dpkg-query",
            detail: e.to_string(),
            hint: "the host needs dpkg",
        })?;
    if !out.status.success() {
        log.note(&String::from_utf8_lossy(&out.stderr));
        return Err(log.failed("dpkg-query", &out.status.to_string()));
    }
    let mut debs: Vec<DebPackage> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            if f.next()? != "installed" {
                return None;
            }
            Some(DebPackage {
                name: f.next()?.into(),
                version: f.next()?.into(),
                arch: f.next()?.into(),
            })
        })
        .collect();
    debs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(debs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str) -> DebPackage {
        DebPackage {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
        }
    }

    #[test]
    fn a_root_that_is_not_the_lock_is_named_by_its_first_differing_package() {
        let locked = [deb("a", "1"), deb("b", "2")];
        let pins = Pins {
            lock: Path::new("/l/image.lock"),
            debs: &locked,
        };
        assert!(pins.check(&locked, "m").is_ok());
        let e = pins
            .check(&[deb("a", "1"), deb("b", "3")], "m")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Debian package b")
                && e.contains("locked at 2")
                && e.contains("installed 3"),
            "{e}"
        );
        let e = pins.check(&[deb("a", "1")], "m").unwrap_err().to_string();
        assert!(
            e.contains("Debian package b") && e.contains("not installed"),
            "{e}"
        );
        let e = pins
            .check(&[deb("a", "1"), deb("b", "2"), deb("c", "1")], "m")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Debian package c") && e.contains("not in the lock"),
            "{e}"
        );
        assert!(e.starts_with("--locked /l/image.lock: "), "{e}");
    }
}
