//! Helpers for tests that drive the real `mvmctl` binary.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

pub fn mvmctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
    c.env_remove("SOURCE_DATE_EPOCH").env_remove("MVM_LOG");
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    run_with_stdin(cmd, None)
}

pub fn run_with_stdin(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("mvmctl starts");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().expect("mvmctl exits normally"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// The repository's `examples/ir/` directory.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ir")
}

/// A small valid workload whose source is `.` with the given include globs.
pub fn workload(include: &[&str], exclude: &[&str]) -> Value {
    json!({
        "schema_version": "0.1",
        "id": "demo",
        "apps": [{
            "name": "demo",
            "source": { "kind": "local_path", "path": ".", "include": include, "exclude": exclude },
            "image": { "kind": "nix_packages", "packages": ["python313"] },
            "resources": {},
            "entrypoints": [{
                "kind": "function", "name": "run", "language": "python",
                "module": "app", "function": "run", "format": "json", "primary": true
            }]
        }]
    })
}

/// A project directory: `workload.json` plus the given files (path → contents).
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(ir: &Value, files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("workload.json"),
            serde_json::to_vec_pretty(ir).unwrap(),
        )
        .unwrap();
        let p = Project { dir };
        for (path, text) in files {
            p.write(path, text);
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ir(&self) -> PathBuf {
        self.path().join("workload.json")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Everything observable about a tree: per path, its kind, mode, mtime and
/// contents (or link target).
pub fn snapshot(root: &Path) -> BTreeMap<String, (String, u32, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let meta = std::fs::symlink_metadata(root).unwrap();
    out.insert(
        ".".into(),
        (
            "dir".into(),
            meta.permissions().mode() & 0o7777,
            meta.mtime(),
            Vec::new(),
        ),
    );
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u32, i64, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_dir() {
            out.insert(rel, ("dir".into(), mode, meta.mtime(), Vec::new()));
            walk(root, &path, out);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.insert(
                rel,
                (
                    "symlink".into(),
                    0,
                    meta.mtime(),
                    target.to_string_lossy().as_bytes().to_vec(),
                ),
            );
        } else {
            out.insert(
                rel,
                (
                    "file".into(),
                    mode,
                    meta.mtime(),
                    std::fs::read(&path).unwrap(),
                ),
            );
        }
    }
}

/// Names in `dir`, sorted: to show that no staging directory was left behind.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Paths and contents of the entries of a `.tgz`, with their header fields.
pub fn archive_entries(path: &Path) -> Vec<(String, u32, u64, u64, u64, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        out.push((
            name,
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            bytes,
        ));
    }
    out
}
