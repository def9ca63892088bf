//! Reading a compile output (directory or deterministic `.tgz`). This is
//! the one place the image builder parses that untrusted input: anyone can
//! write a compile output, `SHA256SUMS` included, so nothing in it is
//! believed because another file in it says so.
//!
//! - Every file is read through [`Tree`]: a symlink anywhere in a path is
//!   an error, never followed, and every path stays inside the output.
//! - An archive is extracted entry by entry through [`Tree`], only regular
//!   files, directories and (under `src/`) symlinks, within size limits.
//! - Every regular file must be listed in `SHA256SUMS` with its hash, and
//!   every listed path must be a plain relative path.
//! - `launch.json` is read with `mvm_launch::parse` (strict, versioned,
//!   validated: unknown fields, another `launch_version`, unknown hook
//!   phases, bad names and out-of-range resources are refused). Then what
//!   can be re-derived is: `ir_hash` must be the hash of `workload.json`,
//!   `source` must describe `src/`, and the whole file must be what
//!   mvm-compile derives from `workload.json` (this builder never
//!   interprets the IR itself; it asks the compiler for the bytes).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use mvm_launch::{Dependencies, HookCmd, HookPhase as Phase, Launch, NodeTool, PythonTool};
use tempfile::TempDir;

use crate::digest::hex;
use crate::error::ImageError;
use crate::table::DepsTool;
use crate::tree::{self, Kind, Tree};

pub const SHA256SUMS: &str = "SHA256SUMS";
pub const LAUNCH_JSON: &str = mvm_launch::FILE_NAME;
pub const WORKLOAD_JSON: &str = "workload.json";
/// The source bundle's directory inside a compile output.
const SRC: &str = "src";

/// Limits on what a compile output may hold. Generous for real outputs;
/// they exist so a crafted one cannot fill the disk or memory.
const MAX_ENTRIES: usize = 500_000;
const MAX_ARCHIVE_BYTES: u64 = 16 << 30;
/// launch.json, workload.json and SHA256SUMS are small.
const MAX_METADATA_BYTES: u64 = 64 << 20;

/// The tool a dependency declaration needs in the root.
pub fn deps_tool(deps: &Dependencies) -> DepsTool {
    match deps {
        Dependencies::None => DepsTool::None,
        Dependencies::Python {
            tool: PythonTool::Uv,
            ..
        } => DepsTool::Uv,
        Dependencies::Python {
            tool: PythonTool::PipTools,
            ..
        } => DepsTool::PipTools,
        Dependencies::Node {
            tool: NodeTool::Npm,
            ..
        } => DepsTool::Npm,
        Dependencies::Node {
            tool: NodeTool::Pnpm,
            ..
        } => DepsTool::Pnpm,
        Dependencies::Node {
            tool: NodeTool::Yarn,
            ..
        } => DepsTool::Yarn,
    }
}

/// A verified compile output.
pub struct Compiled {
    pub dir: PathBuf,
    /// The bytes of SHA256SUMS: they pin every file, so they are the input's identity.
    pub sums: Vec<u8>,
    pub launch: Launch,
    /// The bytes of launch.json, as verified.
    pub launch_bytes: Vec<u8>,
    tree: Tree,
    /// Everything under `src/`, relative to it, parents first.
    src: Vec<tree::Found>,
    /// Keeps an extracted archive alive for as long as `dir` is used.
    _extracted: Option<TempDir>,
}

impl Compiled {
    /// Opens a compile output directory or `.tgz` archive. Archives are
    /// extracted under `scratch`.
    pub fn open(input: &Path, scratch: &Path) -> Result<Compiled, ImageError> {
        let not = |detail: String| ImageError::NotCompiled {
            path: input.to_path_buf(),
            detail,
        };
        let meta = std::fs::metadata(input).map_err(|e| not(e.to_string()))?;
        let (dir, extracted) = if meta.is_dir() {
            (input.to_path_buf(), None)
        } else {
            std::fs::create_dir_all(scratch).map_err(ImageError::io(scratch))?;
            let tmp = tempfile::Builder::new()
                .prefix("input-")
                .tempdir_in(scratch)
                .map_err(ImageError::io(scratch))?;
            let root = extract(input, tmp.path()).map_err(not)?;
            (root, Some(tmp))
        };
        let tree = Tree::open(&dir).map_err(|e| not(e.to_string()))?;
        let found = tree.walk(MAX_ENTRIES).map_err(|e| not(e.to_string()))?;
        let read = |name: &str| {
            tree.read(Path::new(name), MAX_METADATA_BYTES)
                .map_err(|e| not(e.to_string()))
        };
        let sums = read(SHA256SUMS)?;
        let hashes = verify_sums(&dir, &tree, &found, &sums)?;
        let launch_bytes = read(LAUNCH_JSON)?;
        let launch_path = dir.join(LAUNCH_JSON);
        let bad = |detail: String| ImageError::BadLaunch {
            path: launch_path.clone(),
            detail,
        };
        let launch = mvm_launch::parse(&launch_bytes).map_err(|e| bad(e.to_string()))?;
        let workload = read(WORKLOAD_JSON)?;
        check_ir_hash(&launch, &workload).map_err(&bad)?;
        check_derived(&launch, &launch_bytes, &workload, &found, &hashes).map_err(bad)?;
        let src = found
            .into_iter()
            .filter_map(|f| {
                let rel = f.rel.strip_prefix(SRC).ok()?.to_path_buf();
                (!rel.as_os_str().is_empty()).then_some(tree::Found { rel, kind: f.kind })
            })
            .collect();
        Ok(Compiled {
            dir,
            sums,
            launch,
            launch_bytes,
            tree,
            src,
            _extracted: extracted,
        })
    }

    /// The source bundle's entries, relative to `src/`, parents first.
    pub fn src_entries(&self) -> &[tree::Found] {
        &self.src
    }

    /// Opens `src/REL` (a verified regular file).
    pub fn open_src(&self, rel: &Path) -> Result<std::fs::File, ImageError> {
        self.tree
            .open_file(&Path::new(SRC).join(rel))
            .map_err(|e| ImageError::NotCompiled {
                path: self.dir.clone(),
                detail: e.to_string(),
            })
    }

    /// The declared lockfile's bytes, read from the bundle.
    pub fn lockfile(&self) -> Result<Option<(String, Vec<u8>)>, ImageError> {
        let Some(lockfile) = self.launch.dependencies.lockfile() else {
            return Ok(None);
        };
        let bytes = self
            .tree
            .read(&Path::new(SRC).join(lockfile), MAX_METADATA_BYTES)
            .map_err(|e| ImageError::Lockfile {
                path: self.dir.join(SRC).join(tree::escape(lockfile.as_ref())),
                detail: e.to_string(),
            })?;
        Ok(Some((lockfile.to_string(), bytes)))
    }

    /// Phase → the bytes of its script.
    pub fn hook_scripts(&self) -> Result<Vec<(Phase, Vec<u8>)>, ImageError> {
        Phase::ALL
            .iter()
            .map(|&phase| {
                let bytes = self
                    .tree
                    .read(Path::new(&phase.script()), MAX_METADATA_BYTES)
                    .map_err(|e| ImageError::NotCompiled {
                        path: self.dir.clone(),
                        detail: e.to_string(),
                    })?;
                Ok((phase, bytes))
            })
            .collect()
    }

    /// The `before_build` commands, if any were declared.
    pub fn before_build(&self) -> &[HookCmd] {
        self.launch.hooks(Phase::BeforeBuild)
    }
}

/// The contract's own checks ran in `mvm_launch::parse`; what only this
/// reader can check is that `ir_hash` is the hash of the workload.json
/// next to it, and that the lockfile is a path [`Tree`] can confine.
fn check_ir_hash(launch: &Launch, workload: &[u8]) -> Result<(), String> {
    let actual = hex(&<sha2::Sha256 as sha2::Digest>::digest(workload));
    if launch.ir_hash != actual {
        return Err(format!(
            "ir_hash: `{}` is not the hash of workload.json ({actual})",
            tree::escape(launch.ir_hash.as_ref())
        ));
    }
    if let Some(lockfile) = launch.dependencies.lockfile() {
        tree::components(Path::new(lockfile)).map_err(|e| format!("dependencies.lockfile: {e}"))?;
    }
    Ok(())
}

/// What a compile output repeats must be what it is derived from:
/// `source` must describe `src/` as found (its tree hash covers links and
/// executable bits, which SHA256SUMS does not), and launch.json must be
/// exactly what compile writes for `workload.json` — so resources, network,
/// env, entrypoints and hooks are the reviewed IR's, not a second copy's.
fn check_derived(
    launch: &Launch,
    launch_bytes: &[u8],
    workload_bytes: &[u8],
    found: &[tree::Found],
    hashes: &BTreeMap<PathBuf, String>,
) -> Result<(), String> {
    use mvm_compile::bundle::tree_hash::{Item, tree_hash};
    let mut items = Vec::new();
    for f in found {
        let Ok(rel) = f.rel.strip_prefix(SRC) else {
            continue;
        };
        let Some(path) = rel.to_str() else {
            return Err(format!("src/{}: not UTF-8", tree::escape(rel.as_os_str())));
        };
        match &f.kind {
            Kind::File { mode, .. } => {
                let sha256 = hashes.get(&f.rel).map(String::as_str).unwrap_or_default();
                items.push((
                    path,
                    Item::File {
                        executable: mode & 0o111 != 0,
                        sha256,
                    },
                ));
            }
            Kind::Symlink { target } => {
                let Some(target) = target.to_str() else {
                    return Err(format!("src/{path}: a link target that is not UTF-8"));
                };
                items.push((path, Item::Symlink { target }));
            }
            _ => {}
        }
    }
    let files = items.len() as u64;
    let actual = tree_hash(items.iter().copied());
    if actual != launch.source.tree_hash || files != launch.source.files {
        return Err(format!(
            "source: src/ holds {files} entries with tree hash {actual}, launch.json says {} with {}; \
             the bundle was changed after compile",
            launch.source.files,
            tree::escape(launch.source.tree_hash.as_ref())
        ));
    }
    let expected = mvm_compile::launch::rederive(
        workload_bytes,
        &launch.ir_hash,
        &launch.toolchain.mvmctl,
        &mvm_compile::launch::Source {
            files: files as usize,
            tree_hash: &actual,
        },
    )?;
    if expected.as_bytes() != launch_bytes {
        return Err(
            "it is not the launch.json that workload.json gives (a field was changed after compile)"
                .into(),
        );
    }
    Ok(())
}

/// Every `<sha256>  <path>` line must match the file; every regular file
/// (besides SHA256SUMS itself) must be listed; only `src/` may hold links;
/// nothing may be a device, fifo or socket.
fn verify_sums(
    dir: &Path,
    tree: &Tree,
    found: &[tree::Found],
    sums: &[u8],
) -> Result<BTreeMap<PathBuf, String>, ImageError> {
    let sums_path = dir.join(SHA256SUMS);
    let bad = |detail: String| ImageError::Checksum {
        path: sums_path.clone(),
        detail,
    };
    let text = std::str::from_utf8(sums).map_err(|_| bad("not UTF-8".into()))?;
    let mut listed = BTreeMap::new();
    for line in text.split_terminator('\n') {
        let (hash, rel) = line
            .split_once("  ")
            .filter(|(h, _)| mvm_launch::rules::is_sha256_hex(h))
            .ok_or_else(|| bad(format!("malformed line `{}`", tree::escape(line.as_ref()))))?;
        let rel_path = Path::new(rel);
        tree::components(rel_path).map_err(|e| bad(e.to_string()))?;
        if listed
            .insert(rel_path.to_path_buf(), hash.to_string())
            .is_some()
        {
            return Err(bad(format!(
                "`{}` is listed twice",
                tree::escape(rel.as_ref())
            )));
        }
        let mut file = tree.open_file(rel_path).map_err(|e| bad(e.to_string()))?;
        let actual = sha256_reader(&mut file).map_err(ImageError::io(dir.join(rel_path)))?;
        if actual != hash {
            return Err(ImageError::Checksum {
                path: dir.join(rel_path),
                detail: format!("sha256 is {actual}, SHA256SUMS says {hash}"),
            });
        }
    }
    for f in found {
        let shown = || dir.join(tree::escape(f.rel.as_os_str()));
        match &f.kind {
            Kind::Dir => {}
            Kind::File { .. } => {
                if f.rel != Path::new(SHA256SUMS) && !listed.contains_key(&f.rel) {
                    return Err(ImageError::Checksum {
                        path: shown(),
                        detail: "not listed in SHA256SUMS".into(),
                    });
                }
            }
            Kind::Symlink { .. } if f.rel.starts_with(SRC) => {}
            Kind::Symlink { .. } => {
                return Err(ImageError::Checksum {
                    path: shown(),
                    detail: "a symlink outside src/; compile writes none".into(),
                });
            }
            Kind::Special => {
                return Err(ImageError::Checksum {
                    path: shown(),
                    detail: "a device, fifo or socket; compile writes none".into(),
                });
            }
        }
    }
    Ok(listed)
}

fn sha256_reader(r: &mut dyn Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Extracts a `.tgz` compile output into `target` through [`Tree`];
/// returns the directory holding the output (the archive's single top
/// directory, if it has one).
fn extract(archive: &Path, target: &Path) -> Result<PathBuf, String> {
    let file = std::fs::File::open(archive).map_err(|e| e.to_string())?;
    // The limit is on decompressed bytes, headers included: PAX records and
    // GNU long names are read into memory and can restate entry sizes.
    let mut tar = tar::Archive::new(Capped {
        inner: flate2::read::GzDecoder::new(file),
        left: MAX_ARCHIVE_BYTES,
    });
    let out = Tree::open(target).map_err(|e| e.to_string())?;
    let mut total = 0u64;
    let mut count = 0usize;
    let mut tops = std::collections::BTreeSet::new();
    for entry in tar
        .entries()
        .map_err(|e| format!("not a readable .tgz: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("not a readable .tgz: {e}"))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(format!("the archive holds more than {MAX_ENTRIES} entries"));
        }
        let raw = entry.path_bytes().into_owned();
        let rel = PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
        let comps = tree::components(&rel).map_err(|e| format!("archive entry: {e}"))?;
        tops.insert(comps[0].to_os_string());
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let size = entry.size();
        total = total.saturating_add(size);
        if total > MAX_ARCHIVE_BYTES {
            return Err(format!(
                "the archive unpacks to more than {MAX_ARCHIVE_BYTES} bytes"
            ));
        }
        let kind = entry.header().entry_type();
        let shown = tree::escape(rel.as_os_str());
        match kind {
            tar::EntryType::Directory => {
                out.ensure_parents(&rel).map_err(|e| e.to_string())?;
                out.mkdir(&rel, 0o755, None).map_err(|e| e.to_string())?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                out.ensure_parents(&rel).map_err(|e| e.to_string())?;
                out.write_file(&rel, &mut entry, mode, None)
                    .map_err(|e| e.to_string())?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| format!("archive entry `{shown}`: a symlink without a target"))?
                    .into_owned();
                out.ensure_parents(&rel).map_err(|e| e.to_string())?;
                out.symlink(&rel, std::ffi::OsStr::from_bytes(&target), None)
                    .map_err(|e| e.to_string())?;
            }
            other => {
                return Err(format!(
                    "archive entry `{shown}` is a {other:?}; a compile output holds only files, directories and symlinks"
                ));
            }
        }
    }
    let top = match tops.iter().collect::<Vec<_>>().as_slice() {
        [only] if *only != SHA256SUMS => match out.kind(Path::new(only)) {
            Ok(Some(rustix::fs::FileType::Directory)) => target.join(only),
            _ => target.to_path_buf(),
        },
        _ => target.to_path_buf(),
    };
    Ok(top)
}

/// A reader that fails after `left` bytes, so a gzip bomb ends as an error.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(format!(
                "the archive unpacks to more than {MAX_ARCHIVE_BYTES} bytes"
            )));
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A small gzip that inflates past the cap ends as an error, not as
    /// memory or disk spent (the cap here is small; the real one 16 GiB).
    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 8 << 20]).unwrap();
        let small = gz.finish().unwrap();
        assert!(small.len() < 64 << 10);
        let mut capped = Capped {
            inner: flate2::read::GzDecoder::new(&small[..]),
            left: 1 << 20,
        };
        let mut sink = Vec::new();
        let err = capped.read_to_end(&mut sink).unwrap_err();
        assert!(err.to_string().contains("unpacks to more than"), "{err}");
        assert_eq!(sink.len(), 1 << 20);
    }
}
