//! Compile output: source bundle, launch metadata, hook scripts, flake,
//! review report, deterministic archives.
//!
//! [`check`] validates a [`CompileRequest`] and runs the bundle checks
//! without writing anything; [`compile`] does the same and, when nothing is
//! an error, writes the compile output to a directory or a `.tgz`/`.tar.gz`
//! archive, atomically. The layout of the output is documented in
//! `docs/user-guide.md`.

mod analysis;
pub mod bundle;
pub mod checks;
mod error;
pub mod flake;
mod generate;
pub mod hooks;
pub mod launch;
pub mod locate;
pub mod output;
mod request;
pub mod review;

use std::path::Path;

use mvm_ir::{Code, Finding};

pub use analysis::SRC_DIR;
pub use error::CompileError;
pub use generate::{
    FLAKE_NIX, LAUNCH_JSON, REVIEW_JSON, SHA256SUMS, STAMP, STAMP_CONTENT, WORKLOAD_JSON,
};
pub use request::{CheckResult, CompileOptions, CompileOutput, CompileRequest};
pub use review::{Review, Status};

use output::staging::StagedTree;

/// The latest output mtime, in seconds since the epoch: the largest value
/// an 11-digit octal tar header field holds (in the year 2242). Larger
/// [`CompileOptions::mtime`] values are clamped to it.
pub const MAX_MTIME: u64 = 0o77777777777;
use output::target::{self, Staging};

/// Validate the workload and run the bundle checks; writes nothing.
pub fn check(req: &CompileRequest) -> CheckResult {
    match analysis::analyse(req, None, &[]) {
        Ok(a) => CheckResult {
            findings: a.findings,
            review: a.review,
            bundled: a.bundled,
        },
        // Without a staging tree nothing is written, so this cannot happen;
        // reported rather than hidden should that ever change.
        Err(e) => CheckResult {
            findings: e.findings(),
            review: None,
            bundled: None,
        },
    }
}

/// Write the compile output to `out`: a deterministic archive when `out`
/// ends in `.tgz`/`.tar.gz`, else a directory. On any error nothing at
/// `out` changes.
pub fn compile(
    req: &CompileRequest,
    out: &Path,
    opts: &CompileOptions,
) -> Result<CompileOutput, CompileError> {
    let archive = target::is_archive(out);
    target::check_replaceable(out, archive)?;
    let staging = Staging::new(out, archive)?;
    let tree_root = staging.tree_root();
    tracing::debug!(staging = %tree_root.display(), archive, "staging the compile output");
    // An archive's tree is kept in memory: nothing but the archive is
    // written to disk.
    let mut tree = if archive {
        StagedTree::in_memory(tree_root.clone(), opts.mtime)
    } else {
        StagedTree::new(tree_root.clone(), opts.mtime)
    };
    let analysis = analysis::analyse(req, Some(&mut tree), &staging.own_paths())?;
    if analysis.has_errors() {
        return Err(CompileError::Rejected {
            findings: analysis.findings,
        });
    }
    let (Some(review), [app]) = (analysis.review, req.workload.apps.as_slice()) else {
        // Validation reports E_APPS_COUNT first; kept so a gap there cannot panic here.
        let f = Finding::new(
            Code::EAppsCount,
            "/apps",
            "a workload needs exactly one app",
            "declare one app",
        );
        return Err(CompileError::Rejected { findings: vec![f] });
    };
    let bundle = generate::write_all(
        &mut tree,
        &req.workload,
        app,
        &review,
        &opts.toolchain_version,
    )
    .map_err(CompileError::write(&tree_root))?;
    tree.set_mtimes().map_err(CompileError::write(&tree_root))?;
    if let Some(file) = staging.archive_file() {
        let dest = staging.archive_path();
        output::archive::write_tgz(&tree, file, opts.mtime).map_err(CompileError::write(&dest))?;
    }
    staging.commit()?;
    tracing::debug!(out = %out.display(), files = bundle.files, "compile output in place");
    Ok(CompileOutput {
        out: out.to_path_buf(),
        archive,
        ir_hash: review.ir_hash.clone(),
        bundled: bundle.files,
        tree_hash: bundle.tree_hash,
        findings: analysis.findings,
        review,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;
    use output::staging::CopyJob;

    const IR: &str = r#"{
      "schema_version": "0.1", "id": "mem",
      "apps": [{
        "name": "mem",
        "source": { "kind": "local_path", "path": "app" },
        "image": { "kind": "nix_packages", "packages": ["python313"] },
        "resources": {},
        "entrypoints": [{ "kind": "command", "command": ["python3", "/app/main.py"], "name": "main", "primary": true }]
      }]
    }"#;

    fn request(root: &Path) -> CompileRequest {
        CompileRequest {
            workload: mvm_ir::decode::from_str(IR).unwrap(),
            source_root: root.to_path_buf(),
            spans: BTreeMap::new(),
            findings: Vec::new(),
            origin: "ir:test".into(),
            extra_files: Default::default(),
        }
    }

    fn opts() -> CompileOptions {
        CompileOptions {
            mtime: 0,
            toolchain_version: "test".into(),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    /// Path → (kind, executable, bytes or link target) for a directory tree.
    fn read_dir_tree(root: &Path, rel: &str, out: &mut BTreeMap<String, (char, bool, Vec<u8>)>) {
        for name in names(&root.join(rel)) {
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(rel.clone(), ('d', false, Vec::new()));
                read_dir_tree(root, &rel, out);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(
                    rel,
                    ('l', false, target.into_os_string().into_encoded_bytes()),
                );
            } else {
                let exec = meta.permissions().mode() & 0o100 != 0;
                out.insert(rel, ('f', exec, std::fs::read(&path).unwrap()));
            }
        }
    }

    fn read_tgz(path: &Path) -> BTreeMap<String, (char, bool, Vec<u8>)> {
        let file = std::fs::File::open(path).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut out = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let rel = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let kind = entry.header().entry_type();
            let exec = entry.header().mode().unwrap() & 0o100 != 0;
            let value = if kind.is_dir() {
                ('d', false, Vec::new())
            } else if kind.is_symlink() {
                let t = entry.link_name().unwrap().unwrap().into_owned();
                ('l', false, t.into_os_string().into_encoded_bytes())
            } else {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                ('f', exec, bytes)
            };
            out.insert(rel, value);
        }
        out
    }

    fn project() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        std::fs::create_dir_all(app.join("pkg/deep")).unwrap();
        std::fs::write(app.join("main.py"), "print('hi')\n").unwrap();
        std::fs::write(app.join("pkg/deep/data.bin"), vec![7u8; 100_000]).unwrap();
        std::fs::write(app.join("run.sh"), "#!/bin/sh\necho\n").unwrap();
        std::fs::set_permissions(app.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("main.py", app.join("alias.py")).unwrap();
        root
    }

    #[test]
    fn archive_mode_writes_no_tree_to_disk() {
        let src = project();
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("out.tgz");
        let staging = Staging::new(&out, true).unwrap();
        // Staging an archive makes one file, `.out.tgz.tmp-*`, and no directory.
        let staged = names(parent.path());
        assert_eq!(staged.len(), 1, "{staged:?}");
        assert!(staged[0].starts_with(".out.tgz.tmp-"), "{staged:?}");
        assert!(parent.path().join(&staged[0]).is_file());

        let mut tree = StagedTree::in_memory(staging.tree_root(), 0);
        tree.dir("src").unwrap();
        tree.write("src/a/b.txt", b"bytes", false).unwrap();
        tree.symlink("src/a/link", "b.txt").unwrap();
        let job = CopyJob {
            rel: "src/x/main.py".into(),
            src: src.path().join("app/main.py"),
            executable: true,
            max_bytes: 1 << 20,
        };
        let outcomes = tree.copy_many(std::slice::from_ref(&job));
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(tree.contents("src/x/main.py"), Some(&b"print('hi')\n"[..]));
        // The filesystem's refusals, kept in memory.
        let again = tree.write("src/a/b.txt", b"other", false).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        let under_file = tree.write("src/a/b.txt/c", b"", false).unwrap_err();
        assert_eq!(under_file.kind(), std::io::ErrorKind::NotADirectory);
        assert!(tree.copy_many(&[job])[0].is_err());
        tree.set_mtimes().unwrap();
        assert!(!out.exists());
        assert_eq!(names(parent.path()), staged, "nothing but the staging file");

        output::archive::write_tgz(&tree, staging.archive_file().unwrap(), 0).unwrap();
        staging.commit().unwrap();
        assert_eq!(names(parent.path()), ["out.tgz"]);
        let entries = read_tgz(&out);
        assert_eq!(entries["src/a/b.txt"], ('f', false, b"bytes".to_vec()));
        assert_eq!(entries["src/a/link"], ('l', false, b"b.txt".to_vec()));
        assert_eq!(
            entries["src/x/main.py"],
            ('f', true, b"print('hi')\n".to_vec())
        );
    }

    #[test]
    fn archive_and_directory_hold_the_same_files() {
        let src = project();
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("dir");
        let tgz = parent.path().join("out.tgz");
        let d = compile(&request(src.path()), &dir, &opts()).unwrap();
        let a = compile(&request(src.path()), &tgz, &opts()).unwrap();
        assert_eq!(d.tree_hash, a.tree_hash);
        assert_eq!(d.bundled, a.bundled);
        // No staging directory or file is left beside the outputs.
        assert_eq!(names(parent.path()), ["dir", "out.tgz"]);
        let mut on_disk = BTreeMap::new();
        read_dir_tree(&dir, "", &mut on_disk);
        let archived = read_tgz(&tgz);
        assert_eq!(on_disk, archived);
        assert!(archived["src/run.sh"].1);
        assert_eq!(archived["src/alias.py"], ('l', false, b"main.py".to_vec()));
        assert_eq!(archived["src/pkg/deep/data.bin"].2, vec![7u8; 100_000]);
        // Recompiling the archive replaces it with the same bytes.
        let first = std::fs::read(&tgz).unwrap();
        compile(&request(src.path()), &tgz, &opts()).unwrap();
        assert_eq!(std::fs::read(&tgz).unwrap(), first);
    }
}
