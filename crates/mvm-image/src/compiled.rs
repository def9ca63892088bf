//! Reading a compile output (directory or deterministic `.tgz`): every file
//! is checked against `SHA256SUMS` before anything of it enters an image,
//! and `launch.json` is read for what the builder needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tempfile::TempDir;

use crate::digest::sha256_file;
use crate::error::ImageError;
use crate::table::DepsTool;

pub const SHA256SUMS: &str = "SHA256SUMS";
pub const LAUNCH_JSON: &str = "launch.json";

/// The image part of launch.json (the IR's `Image`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageDecl {
    NixPackages { packages: Vec<String> },
    OciBase { reference: String },
}

/// The dependencies part of launch.json (the IR's `Dependencies`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DepsDecl {
    None,
    Python { lockfile: String, tool: String },
    Node { lockfile: String, tool: String },
}

impl DepsDecl {
    /// The declared tool's name (`uv`, `npm`, ...); empty for none.
    pub fn tool_name(&self) -> &str {
        match self {
            DepsDecl::None => "",
            DepsDecl::Python { tool, .. } | DepsDecl::Node { tool, .. } => tool,
        }
    }

    pub fn tool(&self) -> DepsTool {
        match self {
            DepsDecl::None => DepsTool::None,
            DepsDecl::Python { tool, .. } if tool == "uv" => DepsTool::Uv,
            DepsDecl::Python { .. } => DepsTool::PipTools,
            DepsDecl::Node { tool, .. } if tool == "pnpm" => DepsTool::Pnpm,
            DepsDecl::Node { tool, .. } if tool == "yarn" => DepsTool::Yarn,
            DepsDecl::Node { .. } => DepsTool::Npm,
        }
    }
}

/// The fields of launch.json the builder reads; the file itself is copied
/// into the image unchanged.
#[derive(Debug, Clone, Deserialize)]
pub struct Launch {
    pub workload_id: String,
    pub app_name: String,
    pub ir_hash: String,
    pub image: ImageDecl,
    pub dependencies: DepsDecl,
    /// Merged hook commands per phase.
    pub hooks: BTreeMap<String, Vec<serde_json::Value>>,
    /// Phase → script path inside the compile output.
    pub hook_scripts: BTreeMap<String, String>,
}

/// A verified compile output.
pub struct Compiled {
    pub dir: PathBuf,
    /// The bytes of SHA256SUMS: they pin every file, so they are the input's identity.
    pub sums: Vec<u8>,
    pub launch: Launch,
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
            let file = std::fs::File::open(input).map_err(ImageError::io(input))?;
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
            // `unpack` refuses entries that would land outside the target.
            archive.set_preserve_permissions(true);
            archive
                .unpack(tmp.path())
                .map_err(|e| not(format!("not a readable .tgz: {e}")))?;
            let root = single_top_dir(tmp.path()).unwrap_or_else(|| tmp.path().to_path_buf());
            (root, Some(tmp))
        };
        let sums_path = dir.join(SHA256SUMS);
        let sums = std::fs::read(&sums_path).map_err(|e| not(format!("{SHA256SUMS}: {e}")))?;
        verify_sums(&dir, &sums)?;
        let launch_path = dir.join(LAUNCH_JSON);
        let text = std::fs::read_to_string(&launch_path)
            .map_err(|e| not(format!("{LAUNCH_JSON}: {e}")))?;
        let launch: Launch = serde_json::from_str(&text).map_err(|e| ImageError::BadLaunch {
            path: launch_path.clone(),
            detail: e.to_string(),
        })?;
        Ok(Compiled {
            dir,
            sums,
            launch,
            _extracted: extracted,
        })
    }

    pub fn src_dir(&self) -> PathBuf {
        self.dir.join("src")
    }

    pub fn launch_path(&self) -> PathBuf {
        self.dir.join(LAUNCH_JSON)
    }

    /// Phase name → hook script in the compile output.
    pub fn hook_scripts(&self) -> impl Iterator<Item = (&str, PathBuf)> {
        self.launch
            .hook_scripts
            .iter()
            .map(|(phase, rel)| (phase.as_str(), self.dir.join(rel)))
    }

    /// The `before_build` commands, if any were declared.
    pub fn before_build(&self) -> &[serde_json::Value] {
        self.launch
            .hooks
            .get("before_build")
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// An archive whose entries sit in one top directory holds the output inside it.
fn single_top_dir(dir: &Path) -> Option<PathBuf> {
    if dir.join(SHA256SUMS).exists() {
        return None;
    }
    let entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    match entries.as_slice() {
        [only] if only.path().join(SHA256SUMS).is_file() => Some(only.path()),
        _ => None,
    }
}

/// Every `<sha256>  <path>` line must match the file; every file in the
/// output (besides SHA256SUMS itself) must be listed.
fn verify_sums(dir: &Path, sums: &[u8]) -> Result<(), ImageError> {
    let sums_path = dir.join(SHA256SUMS);
    let bad = |detail: String| ImageError::Checksum {
        path: sums_path.clone(),
        detail,
    };
    let text = std::str::from_utf8(sums).map_err(|_| bad("not UTF-8".into()))?;
    let mut listed = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (hash, rel) = line
            .split_once("  ")
            .ok_or_else(|| bad(format!("malformed line `{line}`")))?;
        let rel_path = Path::new(rel);
        if rel_path.is_absolute()
            || rel_path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(bad(format!("path `{rel}` leaves the output")));
        }
        let actual = sha256_file(&dir.join(rel_path))?;
        if actual != hash {
            return Err(ImageError::Checksum {
                path: dir.join(rel_path),
                detail: format!("sha256 is {actual}, SHA256SUMS says {hash}"),
            });
        }
        listed.insert(rel_path.to_path_buf());
    }
    for file in crate::digest::files_under(dir)? {
        let rel = file.strip_prefix(dir).expect("walk stays under its root");
        if rel != Path::new(SHA256SUMS) && !listed.contains(rel) {
            return Err(ImageError::Checksum {
                path: file.clone(),
                detail: "not listed in SHA256SUMS".into(),
            });
        }
    }
    Ok(())
}
