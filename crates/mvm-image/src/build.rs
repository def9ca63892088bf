//! `mvmctl build`: compile output → image in the store.
//!
//! Two halves. [`plan`] verifies the input and decides everything (the
//! package table's root, the install, whether a builder microVM runs) and
//! writes nothing. [`build`] then computes the image id from the inputs
//! alone (so an unchanged rebuild is a lookup) and, if it is new, makes it:
//! the cached base root, the tree assembled in staging, image.lock,
//! `before_build` and installs in the builder microVM, ext4 sealed, renamed
//! into the store; finally the names point at it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::assemble;
use crate::base;
use crate::builder::{Guest, Job};
use crate::buildlog::BuildLog;
use crate::compiled::{Compiled, deps_tool};
use crate::deps::Install;
use crate::digest::{sha256_bytes, sha256_parts};
use crate::error::ImageError;
use crate::lock::{DepsLock, ImageLock, Inputs};
use crate::progress::Progress;
use crate::seal;
use crate::store::{self, ImageRef, Meta, Store};
use crate::table::{ResolveError, Resolver, RootPlan};
use crate::tree::Tree;
use mvm_launch::Image;

/// Identifies how images are made; part of every image id, so a builder
/// change never reuses images made by an older one.
pub const BUILDER: &str = concat!("mvm-image/", env!("CARGO_PKG_VERSION"), "/3");

/// The time every file time in an image is clamped to: `SOURCE_DATE_EPOCH`
/// (the reproducible-builds convention) when set, else
/// [`seal::DEFAULT_EPOCH`]. It is part of the image id.
pub fn source_date_epoch() -> Result<u32, ImageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(seal::DEFAULT_EPOCH),
        Ok(v) if v.trim().is_empty() => Ok(seal::DEFAULT_EPOCH),
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&t| t <= i32::MAX as u32)
            .ok_or(ImageError::BadEpoch { value: v }),
    }
}

pub struct BuildRequest<'a> {
    /// Compile output directory or `.tgz`.
    pub input: &'a Path,
    /// `$MVM_HOME`.
    pub home: &'a Path,
    /// `$MVM_CACHE_DIR`.
    pub cache_dir: &'a Path,
    pub progress: Progress,
    /// The program that serves the builder's egress gate (`mvmctl`, which
    /// has the hidden `__egress-proxy` command). Needed only to install
    /// declared dependencies.
    pub gate_program: Option<&'a Path>,
    /// The operator's `--allow-private-egress HOST:PORT` permissions: the
    /// builder's gate may reach exactly these although they are loopback,
    /// private, link-local or metadata destinations. Never from the input.
    pub allow_private_egress: &'a [mvm_egress::Grant],
}

#[derive(Debug)]
pub struct Built {
    pub image: ImageRef,
    /// The image was already in the store; nothing was built.
    pub cached: bool,
    /// Why the same inputs might not give the same bytes next time, when
    /// mvm cannot vouch for it (a `before_build` hook ran).
    pub caveat: Option<String>,
}

/// The image id: a hash of everything that determines the image.
fn image_id(sums: &[u8], base_key: &str, kernel: &str, epoch: u32) -> String {
    sha256_parts(&[
        ("sha256sums", sums),
        ("builder", BUILDER.as_bytes()),
        ("base", base_key.as_bytes()),
        ("kernel", kernel.as_bytes()),
        ("epoch", epoch.to_string().as_bytes()),
    ])
}

/// What a build will do, decided from the verified input alone: which
/// packages make the base root, what is installed, whether a builder
/// microVM is needed. Making a plan writes nothing to the store.
pub struct Plan {
    compiled: Compiled,
    root: RootPlan,
    /// Keys the cached base root.
    base_key: String,
    install: Option<Install>,
    /// Dependencies or `before_build` run in a builder microVM.
    needs_vm: bool,
}

impl Plan {
    pub fn root(&self) -> &RootPlan {
        &self.root
    }

    pub fn needs_vm(&self) -> bool {
        self.needs_vm
    }

    /// The lockfile dependencies are installed from, if any.
    pub fn install_lockfile(&self) -> Option<&str> {
        self.install.as_ref().map(|i| i.lockfile.as_str())
    }

    /// The names the image is reachable by: app name, then workload id.
    pub fn names(&self) -> [&str; 2] {
        let launch = &self.compiled.launch;
        [launch.app_name.as_str(), launch.workload_id.as_str()]
    }
}

/// Verify the input and decide the build. Refuses what cannot be built
/// (an OCI base, packages the table lacks, dependencies without a gate
/// program) before anything is downloaded or written.
pub fn plan(req: &BuildRequest<'_>) -> Result<Plan, ImageError> {
    let store = Store::new(req.home);
    let compiled = Compiled::open(req.input, &store.staging_root())?;
    let launch = &compiled.launch;
    let packages = match &launch.image {
        Image::NixPackages { packages } => packages,
        Image::OciBase { reference, .. } => {
            return Err(ResolveError::OciUnsupported {
                reference: reference.clone(),
            }
            .into());
        }
    };
    let root = Resolver::Debian.resolve(packages, deps_tool(&launch.dependencies))?;
    let base_key = base::key(&root);
    let install = plan_install(&compiled, req.allow_private_egress)?;
    if let (Some(install), None) = (&install, req.gate_program) {
        return Err(ImageError::NeedsBuilderVm {
            what: format!(
                "installing {} dependencies from `{}`",
                compiled.launch.dependencies.tool_name(),
                install.lockfile
            ),
        });
    }
    let needs_vm = !compiled.before_build().is_empty() || install.is_some();
    Ok(Plan {
        compiled,
        root,
        base_key,
        install,
        needs_vm,
    })
}

pub fn build(req: &BuildRequest<'_>) -> Result<Built, ImageError> {
    build_as(req, None)
}

/// `mvmctl build --locked LOCK`: builds `req.input` from exactly what the
/// image.lock at `lock_path` records (Debian versions, wheels, the
/// builder's kernel, the dependency lockfile and what it installed), and
/// fails naming the first thing that cannot be had again. The image is
/// committed only if its own image.lock comes out as the given one.
pub fn build_locked(
    req: &BuildRequest<'_>,
    lock_path: &Path,
    lock: &ImageLock,
) -> Result<Built, ImageError> {
    build_as(req, Some((lock_path, lock)))
}

fn locked_error(lock: &Path, what: &str, detail: String) -> ImageError {
    ImageError::Locked {
        lock: lock.to_path_buf(),
        what: what.to_string(),
        detail,
        hint: "a lock rebuilds only the inputs, builder and versions it records".into(),
    }
}

/// What a lock says that this build must match before anything is made.
fn check_lock_inputs(
    plan: &Plan,
    kernel: Option<&str>,
    (path, lock): (&Path, &ImageLock),
) -> Result<(), ImageError> {
    let launch = &plan.compiled.launch;
    let sums = sha256_bytes(&plan.compiled.sums);
    if lock.inputs.sha256sums != sums || lock.inputs.ir_hash != launch.ir_hash {
        return Err(locked_error(
            path,
            "inputs",
            format!(
                "the lock is for compile output sha256sums {} (ir_hash {}), this one is {sums} (ir_hash {})",
                lock.inputs.sha256sums, lock.inputs.ir_hash, launch.ir_hash
            ),
        ));
    }
    if lock.builder != BUILDER {
        return Err(locked_error(
            path,
            "builder",
            format!(
                "the lock was made by {}, this mvmctl builds with {BUILDER}",
                lock.builder
            ),
        ));
    }
    if lock.base_key != plan.base_key || lock.suite != plan.root.suite {
        return Err(locked_error(
            path,
            "base root",
            format!(
                "the lock's base root is {} (Debian {}), this build's is {} (Debian {})",
                lock.base_key, lock.suite, plan.base_key, plan.root.suite
            ),
        ));
    }
    if lock.kernel.as_deref() != kernel {
        return Err(locked_error(
            path,
            "kernel",
            format!(
                "the lock's builder kernel is {}, this host's is {} (only the mirror's current kernel can be had)",
                lock.kernel.as_deref().unwrap_or("none"),
                kernel.unwrap_or("none")
            ),
        ));
    }
    Ok(())
}

fn build_as(
    req: &BuildRequest<'_>,
    locked: Option<(&Path, &ImageLock)>,
) -> Result<Built, ImageError> {
    let store = Store::new(req.home);
    // From before the input is unpacked into the store's staging until
    // the image is named (nothing else marks it as wanted): removals
    // refuse meanwhile.
    let _using = store.lock_shared()?;
    let plan = plan(req)?;
    // Dependencies and before_build run in a microVM, whose kernel then
    // shapes the image; without them no kernel is involved.
    let guest = if plan.needs_vm {
        Some(Guest::prepare(req.cache_dir)?)
    } else {
        None
    };
    let kernel = guest.as_ref().map(Guest::kernel);
    let epoch = source_date_epoch()?;
    if let Some(locked) = locked {
        check_lock_inputs(&plan, kernel.as_deref(), locked)?;
    }
    let id = image_id(
        &plan.compiled.sums,
        &plan.base_key,
        kernel.as_deref().unwrap_or_default(),
        epoch,
    );
    if let Some((path, lock)) = locked
        && lock.image_id != id
    {
        return Err(locked_error(
            path,
            "image id",
            format!(
                "the lock is for image {}, these inputs make {id} (another SOURCE_DATE_EPOCH?)",
                lock.image_id
            ),
        ));
    }
    let caveat = (!plan.compiled.before_build().is_empty()).then(|| {
        "before_build ran in the builder: the image is reproducible only if the hook is \
         (`mvmctl build --check-reproducible` checks)"
            .to_string()
    });
    let existing = store.get(&id);
    let image = match existing {
        Some(image) => Built {
            image,
            cached: true,
            caveat,
        },
        None => Built {
            image: make(
                req,
                &plan,
                &store,
                &id,
                guest.as_ref(),
                kernel,
                epoch,
                locked,
            )?,
            cached: false,
            caveat,
        },
    };
    if let Some((path, lock)) = locked {
        // Found in the store, or another build of the same id committed
        // first (the store then keeps that one): either way only an image
        // that is the lock's is ever named for a locked build.
        let stored = &image.image.lock;
        let have = std::fs::read(stored).map_err(ImageError::io(stored))?;
        if have != lock.to_json() {
            return Err(locked_error(
                path,
                "image",
                format!(
                    "the store's image {id} has another image.lock ({}); `mvmctl image rm {}` and build again",
                    stored.display(),
                    &id[..12]
                ),
            ));
        }
    }
    for name in plan.names() {
        store.set_name(name, &id)?;
    }
    Ok(image)
}

/// Carry out `plan` as image `id`: base root, assembly, the builder VM if
/// needed, seal, and commit into the store (staged, then renamed).
/// Warns when the store's file system looks too full for this build: it
/// holds a copy of the base root and the workload as a tree, then the
/// sealed ext4 image beside it, until the tree is dropped.
fn warn_if_short_of_space(
    req: &BuildRequest<'_>,
    store: &Store,
    base_root: &Path,
    compiled_dir: &Path,
    log: &mut BuildLog,
) {
    let Some(free) = crate::store::free_bytes(store.root()) else {
        return;
    };
    let inputs = crate::store::disk_usage(base_root) + crate::store::disk_usage(compiled_dir);
    if let Some(message) = space_warning(store.root(), free, inputs) {
        log.note(&message);
        req.progress.warn(&message);
    }
}

/// The warning for a build whose inputs take `inputs` bytes on a file
/// system with `free` bytes left, if it looks too full.
fn space_warning(root: &Path, free: u64, inputs: u64) -> Option<String> {
    const MARGIN: u64 = 256 << 20;
    let need = 2 * inputs + MARGIN;
    (free < need).then(|| {
        format!(
            "{} has {} MiB free and this build needs about {} MiB; it may fill the disk \
             (`mvmctl prune` and `mvmctl cache clean` free what nothing uses)",
            root.display(),
            free >> 20,
            need.div_ceil(1 << 20)
        )
    })
}

fn make(
    req: &BuildRequest<'_>,
    plan: &Plan,
    store: &Store,
    id: &str,
    guest: Option<&Guest>,
    kernel: Option<String>,
    epoch: u32,
    locked: Option<(&Path, &ImageLock)>,
) -> Result<ImageRef, ImageError> {
    let compiled = &plan.compiled;
    let launch = &compiled.launch;
    let install = &plan.install;
    let log_path = req
        .home
        .join("logs")
        .join("build")
        .join(format!("{id}.log"));
    let _ = std::fs::remove_file(&log_path);
    let mut log = BuildLog::create(&log_path)?;
    log.note(&format!(
        "building image {id} of {} with {BUILDER}",
        req.input.display()
    ));
    if !req.allow_private_egress.is_empty() && install.is_none() {
        log.note("--allow-private-egress has no effect: no dependencies are installed, so the builder has no network");
    }

    let step = req.progress.step("checking the cached base root");
    let pins = locked.map(|(lock, l)| base::Pins {
        lock,
        debs: &l.debian,
    });
    let base = base::ensure(req.cache_dir, &plan.root, pins.as_ref(), &mut log, || {
        step.set_message(format!(
            "building the Debian {} base root (first build of this package set)",
            plan.root.suite
        ))
    });
    step.finish_and_clear();
    let base = base?;
    if let Some((path, l)) = locked
        && l.wheels != base.lock.wheels
    {
        let differs = l
            .wheels
            .iter()
            .find(|w| !base.lock.wheels.contains(w))
            .or_else(|| base.lock.wheels.iter().find(|w| !l.wheels.contains(w)));
        return Err(locked_error(
            path,
            "wheel",
            format!(
                "the lock's wheels differ from this base root's at {}",
                differs.map_or("their order".to_string(), |w| format!("{w:?}"))
            ),
        ));
    }
    warn_if_short_of_space(req, store, &base.root, &compiled.dir, &mut log);

    let staging = store.staging()?;
    let tree = staging.path().join("tree");
    let out = staging.path().join("image");
    std::fs::create_dir(&out).map_err(ImageError::io(&out))?;

    let step = req.progress.step("assembling the root filesystem");
    assemble::copy_base(&base.root, &tree, &mut log)?;
    let inputs = Inputs {
        workload_id: launch.workload_id.clone(),
        app_name: launch.app_name.clone(),
        ir_hash: launch.ir_hash.clone(),
        sha256sums: sha256_bytes(&compiled.sums),
    };
    let mut lock = ImageLock::new(id, BUILDER, &base.lock, kernel, inputs);
    assemble::add_workload(&tree, compiled)?;
    if let Some(guest) = guest {
        step.set_message(match install {
            Some(_) => "installing dependencies in the builder microVM",
            None => "running before_build in the builder microVM",
        });
        let job = Job {
            install: install.as_ref().zip(req.gate_program),
            before_build: !compiled.before_build().is_empty(),
            epoch,
        };
        let outcome = guest.run(&tree, staging.path(), id, &job, &mut log)?;
        if let Some(install) = install {
            lock.dependencies = Some(DepsLock {
                tool: launch.dependencies.tool_name().to_string(),
                lockfile: install.lockfile.clone(),
                lockfile_sha256: install.lockfile_sha256.clone(),
                egress: install.grants.iter().map(|g| g.to_string()).collect(),
                packages: outcome.packages,
            });
        }
    }
    if let Some((path, l)) = locked
        && lock != *l
    {
        let what = if lock.dependencies != l.dependencies {
            "dependencies"
        } else {
            "image.lock"
        };
        return Err(locked_error(
            path,
            what,
            format!(
                "the rebuilt image's image.lock differs from the given one in `{what}`: {}",
                serde_json::to_string(&lock.dependencies).unwrap_or_default()
            ),
        ));
    }
    let lock = lock.to_json();
    let tree_fd = Tree::open(&tree)?;
    if guest.is_some() {
        assemble::add_mvm_files(&tree_fd, compiled)?;
    }
    assemble::write_lock(&tree_fd, &lock)?;
    step.set_message("sealing the ext4 image");
    let size = seal::seal(&tree, &out.join(store::ROOTFS), id, epoch, &mut log)?;
    {
        use std::os::unix::fs::PermissionsExt;
        let rootfs = out.join(store::ROOTFS);
        std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o600))
            .map_err(ImageError::io(&rootfs))?;
    }
    step.finish_and_clear();

    write(&out.join(store::IMAGE_LOCK), &lock)?;
    write(&out.join(store::LAUNCH_JSON), &compiled.launch_bytes)?;
    log.note("done");
    drop(log);
    std::fs::copy(&log_path, out.join(store::BUILD_LOG)).map_err(ImageError::io(&log_path))?;
    let meta = Meta {
        image_id: id.to_string(),
        name: launch.app_name.clone(),
        workload_id: launch.workload_id.clone(),
        ir_hash: launch.ir_hash.clone(),
        sums_sha256: sha256_bytes(&compiled.sums),
        base_key: plan.base_key.clone(),
        builder: BUILDER.to_string(),
        size_bytes: size,
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    };
    // meta.json last: it marks the image complete.
    write(
        &out.join(store::META_JSON),
        &serde_json::to_vec_pretty(&meta).expect("meta serializes"),
    )?;
    store.commit(&out, id)
}

/// The install a declaration asks for, read from the bundled lockfile.
fn plan_install(
    compiled: &Compiled,
    allow_private: &[mvm_egress::Grant],
) -> Result<Option<Install>, ImageError> {
    let Some((lockfile, bytes)) = compiled.lockfile()? else {
        return Ok(None);
    };
    let path = compiled.dir.join("src").join(&lockfile);
    let text = String::from_utf8(bytes).map_err(|_| ImageError::Lockfile {
        path: path.clone(),
        detail: "not UTF-8".into(),
    })?;
    Install::plan(&compiled.launch.dependencies, &text, allow_private)
        .map_err(|detail| ImageError::Lockfile { path, detail })
}

/// Store files are the owner's only (0600), whatever the umask.
fn write(path: &PathBuf, bytes: &[u8]) -> Result<(), ImageError> {
    crate::store::private_write(path, bytes).map_err(ImageError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_warns_only_when_the_disk_looks_too_full_for_it() {
        let root = Path::new("/h/images");
        let mib = 1u64 << 20;
        // Twice the inputs plus 256 MiB: 100 MiB of inputs need 456 MiB.
        assert_eq!(space_warning(root, 456 * mib, 100 * mib), None);
        let warned = space_warning(root, 455 * mib, 100 * mib).expect("a warning");
        assert_eq!(
            warned,
            "/h/images has 455 MiB free and this build needs about 456 MiB; it may fill the disk \
             (`mvmctl prune` and `mvmctl cache clean` free what nothing uses)"
        );
        assert!(space_warning(root, 0, 0).is_some());
    }
}
