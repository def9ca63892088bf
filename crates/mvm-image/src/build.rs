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
use crate::builder::Guest;
use crate::buildlog::BuildLog;
use crate::compiled::{Compiled, DepsDecl, ImageDecl};
use crate::digest::{sha256_bytes, sha256_parts};
use crate::error::ImageError;
use crate::lock::{ImageLock, Inputs};
use crate::progress::Progress;
use crate::seal;
use crate::store::{self, ImageRef, Meta, Store};
use crate::table::{ResolveError, Resolver};

/// Identifies how images are made; part of every image id, so a builder
/// change never reuses images made by an older one.
pub const BUILDER: &str = concat!("mvm-image/", env!("CARGO_PKG_VERSION"), "/1");

pub struct BuildRequest<'a> {
    /// Compile output directory or `.tgz`.
    pub input: &'a Path,
    /// `$MVM_HOME`.
    pub home: &'a Path,
    /// `$MVM_CACHE_DIR`.
    pub cache_dir: &'a Path,
    pub progress: Progress,
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
    refuse_dependencies(&compiled)?;
    // A before_build hook runs in a microVM, whose kernel then shapes the
    // image; without one no kernel is involved.
    let guest = if compiled.before_build().is_empty() {
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
    let lock = ImageLock::new(&id, BUILDER, &base.lock, kernel, inputs).to_json();
    assemble::add_workload(&tree, &compiled, &lock)?;
    if let Some(guest) = &guest {
        step.set_message("running before_build in the builder microVM");
        guest.run_before_build(&tree, staging.path(), &id, &mut log)?;
    }
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

/// Dependency installation needs registry access from the builder
/// microVM; until the guest has a network it is refused, never run on the host.
fn refuse_dependencies(compiled: &Compiled) -> Result<(), ImageError> {
    let (kind, lockfile) = match &compiled.launch.dependencies {
        DepsDecl::None => return Ok(()),
        DepsDecl::Python { lockfile, .. } => ("Python", lockfile),
        DepsDecl::Node { lockfile, .. } => ("Node", lockfile),
    };
    Err(ImageError::NeedsBuilderVm {
        what: format!("{kind} dependency installation from `{lockfile}`"),
    })
}

fn write(path: &PathBuf, bytes: &[u8]) -> Result<(), ImageError> {
    std::fs::write(path, bytes).map_err(ImageError::io(path))
}
