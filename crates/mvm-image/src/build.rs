//! `mvmctl build`: compile output → image in the store.
//!
//! Steps: verify the input, resolve the package table, compute the image
//! id from the inputs alone (so an unchanged rebuild is a lookup), make or
//! reuse the cached base root, assemble the tree in staging, write
//! image.lock, run `before_build` in the builder microVM if declared, seal
//! ext4, rename into the store, point the names at it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::assemble;
use crate::base;
use crate::builder::{Guest, Job};
use crate::buildlog::BuildLog;
use crate::compiled::{Compiled, ImageDecl};
use crate::deps::Install;
use crate::digest::{sha256_bytes, sha256_parts};
use crate::error::ImageError;
use crate::lock::{DepsLock, ImageLock, Inputs};
use crate::progress::Progress;
use crate::seal;
use crate::store::{self, ImageRef, Meta, Store};
use crate::table::{ResolveError, Resolver};
use crate::tree::Tree;

/// Identifies how images are made; part of every image id, so a builder
/// change never reuses images made by an older one.
pub const BUILDER: &str = concat!("mvm-image/", env!("CARGO_PKG_VERSION"), "/2");

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
}

/// The image id: a hash of everything that determines the image.
fn image_id(sums: &[u8], base_key: &str, kernel: &str) -> String {
    sha256_parts(&[
        ("sha256sums", sums),
        ("builder", BUILDER.as_bytes()),
        ("base", base_key.as_bytes()),
        ("kernel", kernel.as_bytes()),
    ])
}

pub fn build(req: &BuildRequest<'_>) -> Result<Built, ImageError> {
    let store = Store::new(req.home);
    let compiled = Compiled::open(req.input, &store.staging_root())?;
    let launch = &compiled.launch;
    let packages = match &launch.image {
        ImageDecl::NixPackages { packages } => packages,
        ImageDecl::OciBase { reference, .. } => {
            return Err(ResolveError::OciUnsupported {
                reference: reference.clone(),
            }
            .into());
        }
    };
    let plan = Resolver::Debian.resolve(packages, launch.dependencies.tool())?;
    let base_key = base::key(&plan);
    let install = plan_install(&compiled, req.allow_private_egress)?;
    let gate_program = match (&install, req.gate_program) {
        (Some(install), None) => {
            return Err(ImageError::NeedsBuilderVm {
                what: format!(
                    "installing {} dependencies from `{}`",
                    compiled.launch.dependencies.tool_name(),
                    install.lockfile
                ),
            });
        }
        (_, program) => program,
    };
    // Dependencies and before_build run in a microVM, whose kernel then
    // shapes the image; without them no kernel is involved.
    let guest = if compiled.before_build().is_empty() && install.is_none() {
        None
    } else {
        Some(Guest::prepare(req.cache_dir)?)
    };
    let kernel = guest.as_ref().map(Guest::kernel);
    let id = image_id(
        &compiled.sums,
        &base_key,
        kernel.as_deref().unwrap_or_default(),
    );
    let names = [launch.app_name.as_str(), launch.workload_id.as_str()];
    if let Some(image) = store.get(&id) {
        for name in names {
            store.set_name(name, &id)?;
        }
        return Ok(Built {
            image,
            cached: true,
        });
    }

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
    let base = base::ensure(req.cache_dir, &plan, &mut log, || {
        step.set_message(format!(
            "building the Debian {} base root (first build of this package set)",
            plan.suite
        ))
    });
    step.finish_and_clear();
    let base = base?;

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
    let mut lock = ImageLock::new(&id, BUILDER, &base.lock, kernel, inputs);
    assemble::add_workload(&tree, &compiled)?;
    if let Some(guest) = &guest {
        step.set_message(match &install {
            Some(_) => "installing dependencies in the builder microVM",
            None => "running before_build in the builder microVM",
        });
        let job = Job {
            install: install.as_ref().zip(gate_program),
            before_build: !compiled.before_build().is_empty(),
        };
        let outcome = guest.run(&tree, staging.path(), &id, &job, &mut log)?;
        if let Some(install) = &install {
            lock.dependencies = Some(DepsLock {
                tool: compiled.launch.dependencies.tool_name().to_string(),
                lockfile: install.lockfile.clone(),
                lockfile_sha256: install.lockfile_sha256.clone(),
                egress: install.grants.iter().map(|g| g.to_string()).collect(),
                packages: outcome.packages,
            });
        }
    }
    let lock = lock.to_json();
    let tree_fd = Tree::open(&tree)?;
    if guest.is_some() {
        assemble::add_mvm_files(&tree_fd, &compiled)?;
    }
    assemble::write_lock(&tree_fd, &lock)?;
    step.set_message("sealing the ext4 image");
    let size = seal::seal(&tree, &out.join(store::ROOTFS), &id, &mut log)?;
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
        image_id: id.clone(),
        name: launch.app_name.clone(),
        workload_id: launch.workload_id.clone(),
        ir_hash: launch.ir_hash.clone(),
        sums_sha256: sha256_bytes(&compiled.sums),
        base_key,
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
    let image = store.commit(&out, &id)?;
    for name in names {
        store.set_name(name, &id)?;
    }
    Ok(Built {
        image,
        cached: false,
    })
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
