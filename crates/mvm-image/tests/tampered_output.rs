//! A compile output is untrusted input: whoever wrote it also wrote its
//! SHA256SUMS. Each test tampers with a real compile output the way an
//! attacker would, re-seals SHA256SUMS so the checksums match, and checks
//! that `build` refuses it naming the field, and that nothing was written
//! to the store or next to the planted paths.

mod common;

use std::path::{Path, PathBuf};

use mvm_image::ImageError;
use sha2::{Digest, Sha256};

const HELLO: &str = "def greet(name):\n    return name\n";

struct Case {
    work: tempfile::TempDir,
    out: PathBuf,
    /// A host file the attacker wants copied into the image.
    secret: PathBuf,
}

fn case() -> Case {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("compiled");
    common::compile(work.path(), &out, &["python313"], "", HELLO);
    let secret = work.path().join("id_ed25519");
    std::fs::write(&secret, "PRIVATE KEY MATERIAL\n").unwrap();
    Case { work, out, secret }
}

impl Case {
    fn launch(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.out.join("launch.json")).unwrap()).unwrap()
    }

    fn set_launch(&self, v: &serde_json::Value) {
        std::fs::write(self.out.join("launch.json"), serde_json::to_vec(v).unwrap()).unwrap();
        reseal(&self.out);
    }

    fn build(&self, input: &Path) -> Result<mvm_image::Built, ImageError> {
        common::build_plain(
            input,
            &self.work.path().join("home"),
            &self.work.path().join("cache"),
        )
    }

    /// The build is refused with `needle` in its message; the store holds
    /// nothing and the secret's bytes are in no file under the work dir
    /// but the secret itself.
    fn refused(&self, input: &Path, needle: &str) -> String {
        let err = self
            .build(input)
            .expect_err("a tampered output must be refused");
        let text = err.to_string();
        assert!(text.contains(needle), "expected `{needle}` in: {text}");
        let home = self.work.path().join("home");
        assert!(common::images_in(&home).is_empty(), "{text}");
        assert_eq!(common::staging_left(&home), 0, "{text}");
        assert!(!home.join("images/names").exists());
        for file in walk(self.work.path()) {
            let staged_by_test = file.components().any(|c| c.as_os_str() == "loot");
            let regular = std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file());
            if file != self.secret && !staged_by_test && regular {
                let bytes = std::fs::read(&file).unwrap_or_default();
                assert!(
                    !bytes.windows(20).any(|w| w == b"PRIVATE KEY MATERIAL"),
                    "the secret was copied into {}",
                    file.display()
                );
            }
        }
        text
    }
}

/// What an attacker does after editing: recompute every line.
fn reseal(out: &Path) {
    let mut lines = Vec::new();
    for file in walk(out) {
        let meta = std::fs::symlink_metadata(&file).unwrap();
        let rel = file
            .strip_prefix(out)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if meta.is_file() && rel != "SHA256SUMS" {
            let hash = hex(&Sha256::digest(std::fs::read(&file).unwrap()));
            lines.push(format!("{hash}  {rel}\n"));
        }
    }
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    std::fs::write(out.join("SHA256SUMS"), lines.concat()).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out
}

#[test]
fn an_untampered_output_opens() {
    let c = case();
    mvm_image::compiled::Compiled::open(&c.out, &c.work.path().join("scratch"))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_hook_script_path_outside_the_output_is_refused() {
    let c = case();
    let mut v = c.launch();
    v["hook_scripts"]["before_start"] = c.secret.to_str().unwrap().into();
    c.set_launch(&v);
    c.refused(&c.out, "hook_scripts.before_start");
}

#[test]
fn a_hook_phase_that_is_a_path_is_refused_and_writes_nothing() {
    let c = case();
    let planted = c.work.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    let phase = format!("../../../../../../../..{}/pwn", planted.display());
    let mut v = c.launch();
    v["hooks"][&phase] = serde_json::json!([]);
    v["hook_scripts"][&phase] = "hooks/before_start.sh".into();
    c.set_launch(&v);
    c.refused(&c.out, "unknown variant");
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);
}

#[test]
fn a_lockfile_path_that_leaves_the_bundle_is_refused() {
    let c = case();
    let mut v = c.launch();
    v["dependencies"] = serde_json::json!({
        "kind": "python", "tool": "uv",
        "lockfile": format!("../../../../../../../..{}", c.secret.display()),
    });
    c.set_launch(&v);
    c.refused(&c.out, "dependencies.lockfile");
}

#[test]
fn unknown_fields_and_other_versions_are_refused() {
    let c = case();
    let mut v = c.launch();
    v["surprise"] = true.into();
    c.set_launch(&v);
    c.refused(&c.out, "unknown field `surprise`");

    let mut v = c.launch();
    v.as_object_mut().unwrap().remove("surprise");
    v["launch_version"] = 2.into();
    c.set_launch(&v);
    c.refused(&c.out, "launch_version: 2 is not 3");
}

#[test]
fn names_that_become_store_paths_are_refused() {
    let c = case();
    let mut v = c.launch();
    v["app_name"] = "../../escape".into();
    c.set_launch(&v);
    c.refused(&c.out, "app_name");
}

#[test]
fn an_ir_hash_that_is_not_the_workloads_is_refused() {
    let c = case();
    let mut v = c.launch();
    v["ir_hash"] = "0".repeat(64).into();
    c.set_launch(&v);
    c.refused(&c.out, "ir_hash");
}

#[test]
fn a_hook_script_that_is_a_symlink_is_refused() {
    let c = case();
    let script = c.out.join("hooks/before_start.sh");
    std::fs::remove_file(&script).unwrap();
    std::os::unix::fs::symlink(&c.secret, &script).unwrap();
    reseal(&c.out);
    c.refused(&c.out, "symlink outside src/");
}

#[test]
fn a_listed_file_reached_through_a_symlink_is_refused() {
    let c = case();
    // src/ replaced by a link to a directory holding the secret, with
    // SHA256SUMS naming the secret through it.
    let loot = c.work.path().join("loot");
    std::fs::create_dir(&loot).unwrap();
    std::fs::copy(&c.secret, loot.join("app.py")).unwrap();
    std::fs::remove_dir_all(c.out.join("src")).unwrap();
    std::os::unix::fs::symlink(&loot, c.out.join("src")).unwrap();
    let hash = hex(&Sha256::digest(std::fs::read(&c.secret).unwrap()));
    let mut sums = std::fs::read_to_string(c.out.join("SHA256SUMS")).unwrap();
    sums.push_str(&format!("{hash}  src/app.py\n"));
    std::fs::write(c.out.join("SHA256SUMS"), sums).unwrap();
    c.refused(&c.out, "links are never followed");
}

/// A gzip'd tar with the given entries: (path, kind, data or link target).
fn archive(path: &Path, entries: &[(&str, tar::EntryType, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        // Raw names: the tar crate's own setters refuse `..`.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            let link = &mut h.as_old_mut().linkname;
            link[..data.len()].copy_from_slice(data);
            h.set_size(0);
            h.set_cksum();
            tar.append(&h, std::io::empty()).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn archives_cannot_write_outside_their_extraction_directory() {
    let c = case();
    let outside = c.work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let link_target = outside.to_str().unwrap().as_bytes().to_vec();
    let secret = c.secret.to_str().unwrap().as_bytes().to_vec();
    type Entry<'a> = (&'a str, tar::EntryType, &'a [u8]);
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "dotdot.tgz",
            vec![("out/../../../outside/pwn", tar::EntryType::Regular, b"x")],
            "`..`",
        ),
        (
            "through-link.tgz",
            vec![
                ("out/src/l", tar::EntryType::Symlink, &link_target),
                ("out/src/l/pwn", tar::EntryType::Regular, b"x"),
            ],
            "not a directory",
        ),
        (
            "hardlink.tgz",
            vec![("out/src/h", tar::EntryType::Link, &secret)],
            "Link",
        ),
        (
            "device.tgz",
            vec![("out/src/d", tar::EntryType::Char, b"")],
            "Char",
        ),
    ];
    for (name, entries, needle) in cases {
        let path = c.work.path().join(name);
        archive(&path, &entries);
        c.refused(&path, needle);
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{name} wrote outside"
        );
    }
}

#[test]
fn launch_fields_that_differ_from_the_reviewed_workload_are_refused() {
    let c = case();
    let mut v = c.launch();
    v["resources"]["memory_mib"] = 4096.into();
    v["resources"]["rootfs_size_mib"] = 65536.into();
    c.set_launch(&v);
    c.refused(&c.out, "not the launch.json that workload.json gives");
}

#[test]
fn launch_values_out_of_range_are_refused_where_they_are_read() {
    let c = case();
    let mut v = c.launch();
    v["resources"]["memory_mib"] = 4_000_000.into();
    c.set_launch(&v);
    c.refused(
        &c.out,
        "resources.memory_mib: 4000000 is outside 64..=65536",
    );

    let mut v = c.launch();
    v["resources"]["memory_mb"] = 256.into();
    c.set_launch(&v);
    c.refused(&c.out, "unknown field `memory_mb`");
}

#[test]
fn links_and_executable_bits_added_after_compile_are_refused() {
    // SHA256SUMS lists regular files only; the tree hash covers the rest.
    let c = case();
    std::os::unix::fs::symlink("/etc/shadow", c.out.join("src/x")).unwrap();
    c.refused(&c.out, "tree hash");

    let c = case();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        c.out.join("src/app.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    c.refused(&c.out, "tree hash");
}

#[test]
fn a_fifo_in_place_of_a_listed_file_does_not_hang_the_build() {
    let c = case();
    std::fs::remove_file(c.out.join("SHA256SUMS")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(c.out.join("SHA256SUMS"))
        .status()
        .unwrap();
    assert!(made.success());
    c.refused(&c.out, "not a regular file");
}
