//! The CLI conventions people expect: shell completions and man pages
//! generated from the argument definitions, the `--json` error shape on
//! stderr, and the store commands' refusals (docs/user-guide.md).

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;

use common::{Run, mvmctl, run};
use serde_json::Value;

fn in_home(home: &Path, args: &[&str]) -> Run {
    run(mvmctl()
        .args(args)
        .env("MVM_HOME", home)
        .env("MVM_CACHE_DIR", home.join("cache")))
}

/// The one error line a `--json` run writes to stderr.
fn json_error(r: &Run) -> Value {
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let line = r.stderr.lines().last().expect("an error line");
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let keys: Vec<&String> = v["error"]
        .as_object()
        .expect("an error object")
        .keys()
        .collect();
    assert_eq!(keys, ["code", "hint", "message"], "{v}");
    v["error"].clone()
}

#[test]
fn completions_are_generated_for_each_shell_and_bash_parses_its_script() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_mvmctl()"),
        ("zsh", "#compdef mvmctl"),
        ("fish", "complete -c mvmctl"),
    ] {
        let r = run(mvmctl().args(["completions", shell]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}: no {marker}");
        for sub in ["prune", "image", "snapshot", "completions"] {
            assert!(r.stdout.contains(sub), "{shell} completes no `{sub}`");
        }
        assert!(
            !r.stdout.contains("__supervise"),
            "{shell} offers a hidden command"
        );
        if shell == "bash" {
            let script = dir.path().join("mvmctl.bash");
            std::fs::write(&script, &r.stdout).unwrap();
            let checked = std::process::Command::new("bash")
                .arg("-n")
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                checked.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&checked.stderr)
            );
        }
    }
    let r = run(mvmctl().args(["completions", "tcsh"]));
    assert_eq!(r.code, 2, "an unknown shell is a usage error");
    assert!(r.stderr.contains("possible values"), "{}", r.stderr);
}

#[test]
fn man_pages_are_generated_from_the_same_definitions() {
    let r = run(mvmctl().arg("man"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(".TH mvmctl 1"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(r.stdout.contains("prune"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let r = run(mvmctl().args(["man", "--out", out.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for page in [
        "mvmctl.1",
        "mvmctl-prune.1",
        "mvmctl-image.1",
        "mvmctl-up.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "no {page} in {pages:?}");
    }
    assert!(
        pages
            .iter()
            .all(|p| !p.starts_with('.') && !p.contains("__")),
        "{pages:?}"
    );
    let prune = std::fs::read_to_string(out.join("mvmctl-prune.1")).unwrap();
    assert!(
        prune.contains(".TH mvmctl-prune 1") && prune.contains("dry\\-run"),
        "{prune}"
    );
}

#[test]
fn json_runs_report_errors_in_one_shape_with_the_runtime_code() {
    let home = tempfile::tempdir().unwrap();
    let e = json_error(&in_home(home.path(), &["down", "nope", "--json"]));
    assert_eq!(e["code"], "E_SANDBOX_NOT_FOUND", "{e}");
    assert_eq!(e["message"], "no instance named `nope`");
    assert!(e["hint"].as_str().unwrap().contains("mvmctl ps"), "{e}");
    let e = json_error(&in_home(
        home.path(),
        &["image", "inspect", "nope", "--json"],
    ));
    assert_eq!(e["code"], "E_TEMPLATE_NOT_FOUND", "{e}");
    // Without --json the same error is text.
    let r = in_home(home.path(), &["down", "nope"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: no instance named `nope`"),
        "{}",
        r.stderr
    );
}

#[test]
fn store_commands_on_an_empty_home_free_nothing_and_say_so() {
    let home = tempfile::tempdir().unwrap();
    let r = in_home(home.path(), &["image", "list", "--json"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{}", r.stderr);
    let r = in_home(home.path(), &["image", "list"]);
    assert!(r.stdout.starts_with("NAME"), "{}", r.stdout);
    for args in [&["prune"][..], &["cache", "clean", "--dry-run"]] {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let r = in_home(home.path(), &with_json);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["removed"], serde_json::json!([]), "{v}");
        assert_eq!(v["freed_bytes"], 0, "{v}");
        let r = in_home(home.path(), args);
        assert!(r.stdout.contains("free"), "{}", r.stdout);
    }
}

/// A build (or an `up`) holds the store's shared lock until what it made
/// is named; a prune then refuses instead of deciding around it.
#[test]
fn prune_and_rm_refuse_while_a_build_holds_the_store() {
    let home = tempfile::tempdir().unwrap();
    let lock = std::fs::File::create(home.path().join("store.lock")).unwrap();
    // SAFETY: flock on a file this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH) }, 0);
    for args in [
        &["prune", "--json"][..],
        &["image", "rm", "anything", "--json"],
        &["cache", "clean", "--json"],
    ] {
        let e = json_error(&in_home(home.path(), args));
        assert_eq!(e["code"], "E_STORE_BUSY", "{args:?}: {e}");
    }
    drop(lock);
    assert_eq!(in_home(home.path(), &["prune"]).code, 0);
}
