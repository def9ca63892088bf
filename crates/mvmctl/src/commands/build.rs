//! `mvmctl build`: compile output → image in the store.

use std::path::PathBuf;

use serde::Serialize;

/// Build a microVM image from a compile output (directory or .tgz). An
/// unchanged input is found in the store and not built again.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Compile output directory or archive (from `mvmctl compile`).
    pub input: PathBuf,
    /// Print {image_id, name, size_bytes, lock_path, rootfs_path, cached} as JSON.
    #[arg(long)]
    pub json: bool,
    /// Let the builder's egress gate reach HOST:PORT although it is (or
    /// resolves to) a loopback, private, link-local or metadata address,
    /// e.g. your own local package index; repeatable. Exact destinations
    /// only; recorded in the build log.
    #[arg(long = "allow-private-egress", value_name = "HOST:PORT")]
    pub allow_private_egress: Vec<String>,
    /// Build the input twice, each time with an empty store and download
    /// cache of its own, and report whether the two images are the same
    /// bytes, or which paths and attributes differ (exit 1). The store is
    /// not changed.
    #[arg(long)]
    pub check_reproducible: bool,
    /// Rebuild from exactly what an image.lock records (Debian package
    /// versions, wheels, the builder's kernel, the installed
    /// dependencies); fails naming the first one that can no longer be
    /// had. The image is stored only if its image.lock comes out the same.
    #[arg(long, value_name = "IMAGE_LOCK", conflicts_with = "check_reproducible")]
    pub locked: Option<PathBuf>,
}

/// Every successful build is recorded, a cached one too: the record says
/// this image id stands for these inputs, so an image made before the
/// trail existed gets its record the next time it is built. Build does
/// not read the policy (auditing there is per instance, decided at `up`).
/// The image is in the store either way, so a trail that cannot be
/// written is a warning here, not a failed build.
fn record_build(home: &std::path::Path, meta: &mvm_image::Meta) {
    let event = mvm_audit::Event::Build {
        image_id: meta.image_id.clone(),
        ir_hash: meta.ir_hash.clone(),
        workload_id: meta.workload_id.clone(),
        inputs_sha256: meta.sums_sha256.clone(),
    };
    let recorded = mvm_runtime::audit::Recorder::open(home).and_then(|r| r.record(None, &event));
    if let Err(e) = recorded {
        eprintln!(
            "warning: the build was not recorded in the audit trail: {}",
            mvm_ir::text::for_terminal(&e.to_string())
        );
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    image_id: &'a str,
    name: &'a str,
    size_bytes: u64,
    lock_path: &'a std::path::Path,
    rootfs_path: &'a std::path::Path,
    cached: bool,
    /// Why the same inputs might not rebuild to the same bytes, if mvm
    /// cannot vouch for it.
    reproducible_caveat: Option<&'a str>,
}

pub fn run(args: BuildArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let cache_dir = mvm_guest::default_cache_dir()?;
    let progress = if args.json {
        mvm_image::Progress::Hidden
    } else {
        mvm_image::Progress::Stderr
    };
    let allow_private_egress = args
        .allow_private_egress
        .iter()
        .map(|g| mvm_egress::Grant::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    // This binary serves the builder's egress gate (`__egress-proxy`).
    let gate = std::env::current_exe()?;
    let req = mvm_image::BuildRequest {
        input: &args.input,
        home: &home,
        cache_dir: &cache_dir,
        progress,
        gate_program: Some(&gate),
        allow_private_egress: &allow_private_egress,
    };
    if args.check_reproducible {
        return check(&req, &home, args.json);
    }
    let built = match &args.locked {
        Some(path) => {
            let lock = mvm_image::read_lock(path)?;
            mvm_image::build_locked(&req, path, &lock)?
        }
        None => mvm_image::build(&req)?,
    };
    let image = &built.image;
    record_build(&home, &image.meta);
    if args.json {
        let report = Report {
            image_id: &image.id,
            name: &image.meta.name,
            size_bytes: image.meta.size_bytes,
            lock_path: &image.lock,
            rootfs_path: &image.rootfs,
            cached: built.cached,
            reproducible_caveat: built.caveat.as_deref(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(caveat) = &built.caveat {
            eprintln!("note: {caveat}");
        }
        let how = if built.cached {
            "already built"
        } else {
            "built"
        };
        println!(
            "{how} image {} for `{}` ({:.1} MiB)\n  rootfs {}\n  lock   {}\nrun it with `mvmctl up {}`",
            &image.id[..12],
            image.meta.name,
            image.meta.size_bytes as f64 / (1 << 20) as f64,
            image.rootfs.display(),
            image.lock.display(),
            image.meta.name,
        );
    }
    Ok(0)
}

/// `--check-reproducible`: two builds in scratch space under the home
/// (base roots are large; a temporary file system may be small).
fn check(
    req: &mvm_image::BuildRequest<'_>,
    home: &std::path::Path,
    json: bool,
) -> anyhow::Result<i32> {
    mvm_runtime::private::create_dir_all(home)?;
    let scratch = tempfile::Builder::new()
        .prefix(".check-reproducible-")
        .tempdir_in(home)?;
    if !json {
        eprintln!(
            "building twice at once, each with an empty store and download cache (as long as a first build)..."
        );
    }
    let report = mvm_image::check_reproducible(req, scratch.path())?;
    let code = if report.identical { 0 } else { 1 };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(code);
    }
    let [a, b] = report.build_seconds;
    if report.identical {
        println!(
            "reproducible: two builds of image {} in empty caches ({a:.1}s, {b:.1}s) gave the same bytes\n  rootfs.ext4 sha256 {}\n  image.lock  sha256 {}",
            &report.image_id[..12],
            report.rootfs_sha256[0],
            report.lock_sha256[0],
        );
    } else {
        println!(
            "not reproducible: two builds of image {} in empty caches differ ({} bytes of rootfs.ext4; {} differences)",
            &report.image_id[..12],
            report.rootfs_bytes_differing,
            report.differences.len()
        );
        for d in &report.differences {
            println!("  {}  {}: {} | {}", d.path, d.attribute, d.first, d.second);
        }
        if report.differences.is_empty() {
            println!("  (no file or attribute differs: the difference is in file system metadata)");
        }
    }
    Ok(code)
}
