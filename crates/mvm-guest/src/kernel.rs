//! The guest kernel: Debian's cloud kernel package, fetched with apt once,
//! turned into an uncompressed `vmlinux` plus the few modules the guest
//! loads, and cached with a `kernel.json` record of where it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::apt::{self, AptError, DebPackage};
use crate::bzimage::{self, BzImageError};
use crate::cache::{self, CacheError};
use crate::deb::{self, DebError};
use crate::modules::{self, ModuleError};
use crate::progress::Progress;

/// The Debian metapackage that always points at the current cloud kernel.
pub const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";

/// Modules every guest loads at boot (with their dependencies added
/// automatically): the virtio-mmio bus of QEMU's microvm machine, disks,
/// the agent's virtio-serial channel and the root overlay. ext4 is listed
/// so that a kernel building it as a module still works. Each module costs
/// boot time under TCG, so nothing optional is here.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "virtio_console",
    "ext4",
    "overlay",
];

/// Loaded only when the host attaches a network device (kernel command
/// line `mvm.ip=`): the image builder's egress-gate network.
pub const NETWORK_MODULES: &[&str] = &["virtio_net"];

/// What a cached kernel's modules were extracted for.
fn wanted_modules() -> Vec<String> {
    GUEST_MODULES
        .iter()
        .map(|m| m.to_string())
        .chain(NETWORK_MODULES.iter().map(|m| format!("network:{m}")))
        .collect()
}

const MANIFEST_FILE: &str = "kernel.json";
const VMLINUX_FILE: &str = "vmlinux";
const MODULES_DIR: &str = "modules";
/// Names the kernel entry that guests boot (see [`ensure_kernel`]).
const CURRENT_FILE: &str = "current";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("kernel package {package}: {source}")]
    BzImage {
        package: String,
        source: BzImageError,
    },
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("package {0} holds no boot/vmlinuz-* kernel image")]
    NoKernelImage(String),
    #[error("package {0} holds no lib/modules/<release>/ tree")]
    NoModuleTree(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path} from the package: {source}")]
    ReadMember {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a cached kernel came from and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelManifest {
    pub package: String,
    pub version: String,
    /// `uname -r` of the guest, e.g. `6.1.0-56-cloud-amd64`.
    pub release: String,
    pub deb_sha256: String,
    pub vmlinux_sha256: String,
    /// The modules that were asked for when extracted (`GUEST_MODULES`,
    /// then `NETWORK_MODULES` prefixed `network:`).
    pub wanted_modules: Vec<String>,
    /// The modules every guest loads, in the order it must load them.
    pub load_order: Vec<String>,
    /// The further modules a guest with a network device loads, in order,
    /// after `load_order`.
    #[serde(default)]
    pub network_load_order: Vec<String>,
}

/// A kernel ready in the cache.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub dir: PathBuf,
    pub manifest: KernelManifest,
}

impl Kernel {
    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join(VMLINUX_FILE)
    }

    /// The plain `.ko` file of a module named in the load order.
    pub fn module(&self, name: &str) -> PathBuf {
        self.dir.join(MODULES_DIR).join(format!("{name}.ko"))
    }
}

/// Returns the guest kernel from `cache_dir`. The first use resolves the
/// current Debian cloud kernel through apt, downloads and extracts it; later
/// uses take the kernel recorded as current without asking apt (which takes
/// seconds), so every guest boots the same kernel until [`update_kernel`].
pub fn ensure_kernel(cache_dir: &Path, progress: Progress) -> Result<Kernel, KernelError> {
    let kernels = cache_dir.join("kernel");
    if let Some(kernel) = current(&kernels) {
        return Ok(kernel);
    }
    update_kernel(cache_dir, progress)
}

/// Resolves the metapackage through apt again and makes its kernel the
/// current one, fetching and extracting it if it is not cached yet.
pub fn update_kernel(cache_dir: &Path, progress: Progress) -> Result<Kernel, KernelError> {
    let spinner = progress.spinner(format!("resolving {KERNEL_METAPACKAGE}"));
    let package = apt::resolve_kernel_package(KERNEL_METAPACKAGE)?;
    spinner.finish_and_clear();

    let kernels = cache_dir.join("kernel");
    let dir = kernels.join(entry_name(&package));
    let kernel = match cached(&dir, Some(&package.sha256)) {
        Some(kernel) => kernel,
        None => fetch(&kernels, &dir, &package, progress)?,
    };
    set_current(&kernels, &dir)?;
    Ok(kernel)
}

fn fetch(
    kernels: &Path,
    dir: &Path,
    package: &DebPackage,
    progress: Progress,
) -> Result<Kernel, KernelError> {
    let deb = ensure_deb(&kernels.join("debs"), package, progress)?;
    let staging = cache::staging_dir(kernels)?;
    let manifest = extract(&deb, package, staging.path(), progress)?;
    // A previous extraction with another module list is replaced whole.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| KernelError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    cache::publish(staging.path(), dir)?;
    tracing::info!(package = %package.name, version = %package.version, "guest kernel cached");
    Ok(Kernel {
        dir: dir.to_owned(),
        manifest,
    })
}

/// The kernel named by `kernels/current`, if it is complete and extracted
/// with today's module list.
fn current(kernels: &Path) -> Option<Kernel> {
    let name = std::fs::read_to_string(kernels.join(CURRENT_FILE)).ok()?;
    let dir = kernels.join(name.trim());
    let kernel = cached(&dir, None)?;
    kernel.vmlinux().is_file().then_some(kernel)
}

/// Records `dir` as the current kernel; staged and renamed like every cache write.
fn set_current(kernels: &Path, dir: &Path) -> Result<(), KernelError> {
    let name = dir
        .file_name()
        .expect("kernel entries are named")
        .to_string_lossy();
    let staging = cache::staging_dir(kernels)?;
    let staged = staging.path().join(CURRENT_FILE);
    write(&staged, format!("{name}\n").as_bytes())?;
    let target = kernels.join(CURRENT_FILE);
    std::fs::rename(&staged, &target).map_err(|source| KernelError::Write {
        path: target,
        source,
    })
}

fn entry_name(package: &DebPackage) -> String {
    // Debian versions may carry an epoch (`1:2.3`); keep paths colon-free.
    format!("{}_{}", package.name, package.version.replace(':', "%3a"))
}

/// The kernel extracted in `dir`, if its manifest is readable, lists today's
/// modules and (when given) comes from the package with `deb_sha256`.
fn cached(dir: &Path, deb_sha256: Option<&str>) -> Option<Kernel> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).ok()?;
    let manifest: KernelManifest = serde_json::from_str(&text).ok()?;
    let current = deb_sha256.is_none_or(|sha| sha == manifest.deb_sha256)
        && manifest.wanted_modules == wanted_modules();
    current.then(|| Kernel {
        dir: dir.to_owned(),
        manifest,
    })
}

/// The verified `.deb` in `debs`, downloaded (staged, then renamed) if absent.
fn ensure_deb(
    debs: &Path,
    package: &DebPackage,
    progress: Progress,
) -> Result<PathBuf, KernelError> {
    let target = debs.join(format!("{}.deb", entry_name(package)));
    if apt::verify_sha256(&target, &package.sha256).is_ok() {
        return Ok(target);
    }
    let staging = cache::staging_dir(debs)?;
    let spinner = progress.spinner(format!(
        "downloading {} {} ({:.1} MB)",
        package.name,
        package.version,
        package.size_bytes as f64 / 1e6
    ));
    let downloaded = apt::download(package, staging.path())?;
    spinner.finish_and_clear();
    cache::publish(&downloaded, &target)?;
    Ok(target)
}

/// Extracts `vmlinux`, the needed modules and `kernel.json` into `out`.
fn extract(
    deb: &Path,
    package: &DebPackage,
    out: &Path,
    progress: Progress,
) -> Result<KernelManifest, KernelError> {
    let all_modules = out.join("all-modules");
    let modules_dir = out.join(MODULES_DIR);
    for dir in [&all_modules, &modules_dir] {
        cache::create_dir(dir)?;
    }

    let mut bzimage = None;
    let mut release = None;
    let mut builtin = BTreeSet::new();
    let mut depends = BTreeMap::new();
    let bar = progress.bytes(0, format!("extracting {}", package.name));
    deb::for_each_file(deb, &bar, |path: &Path, contents: &mut dyn Read| {
        let read_error = |source| KernelError::ReadMember {
            path: path.to_owned(),
            source,
        };
        let text = path.to_string_lossy();
        if text.starts_with("boot/vmlinuz-") {
            let mut bytes = Vec::new();
            contents.read_to_end(&mut bytes).map_err(read_error)?;
            bzimage = Some(bytes);
        } else if let Some(rest) = text.strip_prefix("lib/modules/") {
            let (tree_release, inside) = rest.split_once('/').unwrap_or((rest, ""));
            release.get_or_insert_with(|| tree_release.to_owned());
            if inside == "modules.builtin" {
                let mut list = String::new();
                contents.read_to_string(&mut list).map_err(read_error)?;
                builtin = modules::builtin_names(&list);
            } else if let Some((name, format)) = modules::module_file(path) {
                let ko = modules::read_plain(&name, format, contents)?;
                depends.insert(name.clone(), modules::dependencies(&name, &ko)?);
                write(&all_modules.join(format!("{name}.ko")), &ko)?;
            }
        }
        Ok::<(), KernelError>(())
    })?;
    bar.finish_and_clear();

    let bzimage = bzimage.ok_or_else(|| KernelError::NoKernelImage(package.name.clone()))?;
    let release = release.ok_or_else(|| KernelError::NoModuleTree(package.name.clone()))?;

    let load_order = modules::load_order(GUEST_MODULES, &depends, &builtin)?;
    let all: Vec<&str> = GUEST_MODULES
        .iter()
        .chain(NETWORK_MODULES)
        .copied()
        .collect();
    let network_load_order: Vec<String> = modules::load_order(&all, &depends, &builtin)?
        .into_iter()
        .filter(|m| !load_order.contains(m))
        .collect();
    for name in load_order.iter().chain(&network_load_order) {
        let file = format!("{name}.ko");
        std::fs::rename(all_modules.join(&file), modules_dir.join(&file)).map_err(|source| {
            KernelError::Write {
                path: modules_dir.join(&file),
                source,
            }
        })?;
    }
    std::fs::remove_dir_all(&all_modules).map_err(|source| KernelError::Write {
        path: all_modules.clone(),
        source,
    })?;

    let spinner = progress.spinner("decompressing the kernel".to_owned());
    let vmlinux = bzimage::extract_vmlinux(&bzimage).map_err(|source| KernelError::BzImage {
        package: package.name.clone(),
        source,
    })?;
    write(&out.join(VMLINUX_FILE), &vmlinux)?;
    spinner.finish_and_clear();

    let manifest = KernelManifest {
        package: package.name.clone(),
        version: package.version.clone(),
        release,
        deb_sha256: package.sha256.clone(),
        vmlinux_sha256: crate::hex(&Sha256::digest(&vmlinux)),
        wanted_modules: wanted_modules(),
        load_order,
        network_load_order,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write(&out.join(MANIFEST_FILE), &json)?;
    Ok(manifest)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), KernelError> {
    std::fs::write(path, bytes).map_err(|source| KernelError::Write {
        path: path.to_owned(),
        source,
    })
}
