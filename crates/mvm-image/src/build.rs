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
use crate::compiled::{Compiled, DepsDecl, ImageDecl};
use crate::deps::Install;
use crate::digest::{sha256_bytes, sha256_parts};
use crate::error::ImageError;
use crate::lock::{DepsLock, ImageLock, Inputs};
use crate::progress::Progress;
use crate::seal;
use crate::store::{self, ImageRef, Meta, Store};
use crate::table::{ResolveError, Resolver};

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
        ImageDecl::OciBase { reference } => {
            return Err(ResolveError::OciUnsupported {
                reference: reference.clone(),
            }
            .into());
        }
    };
    let plan = Resolver::Debian.resolve(packages, launch.dependencies.tool())?;
    let base_key = base::key(&plan);
    let install = plan_install(&compiled)?;
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
    assemble::write_lock(&tree, &lock)?;
    step.set_message("sealing the ext4 image");
    let size = seal::seal(&tree, &out.join(store::ROOTFS), &id, &mut log)?;
    step.finish_and_clear();

    write(&out.join(store::IMAGE_LOCK), &lock)?;
    let launch_bytes =
        std::fs::read(compiled.launch_path()).map_err(ImageError::io(compiled.launch_path()))?;
    write(&out.join(store::LAUNCH_JSON), &launch_bytes)?;
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
fn plan_install(compiled: &Compiled) -> Result<Option<Install>, ImageError> {
    let lockfile = match &compiled.launch.dependencies {
        DepsDecl::None => return Ok(None),
        DepsDecl::Python { lockfile, .. } | DepsDecl::Node { lockfile, .. } => lockfile,
    };
    let path = compiled.src_dir().join(lockfile);
    let text = std::fs::read_to_string(&path).map_err(ImageError::io(&path))?;
    Install::plan(&compiled.launch.dependencies, &text)
        .map_err(|detail| ImageError::Lockfile { path, detail })
}

fn write(path: &PathBuf, bytes: &[u8]) -> Result<(), ImageError> {
    std::fs::write(path, bytes).map_err(ImageError::io(path))
}
