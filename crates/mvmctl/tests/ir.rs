//! `mvmctl ir schema` and `mvmctl ir fmt` with the real binary.

mod common;

use common::*;
use serde_json::{Value, json};

#[test]
fn schema_is_the_ir_json_schema() {
    let r = run(mvmctl().args(["ir", "schema"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(schema["title"], "mvm Workload IR 0.1");
    assert!(schema["$schema"].as_str().unwrap().contains("2020-12"));
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn fmt_prints_the_canonical_form_with_defaults_written_out() {
    let p = Project::new(&workload(&["app.py"], &[]), &[]);
    let r = run(mvmctl().args(["ir", "fmt"]).arg(p.ir()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with(r#"{"apps":[{"addons":[],"dependencies":{"kind":"none"},"entrypoints":[{"format":"json","function":"run","kind":"function","language":"python","module":"app","name":"run","primary":true,"working_dir":"/app"}],"env":{},"hooks":{"after_start":[],"before_build":[],"before_start":[],"before_stop":[]}"#), "{}", r.stdout);
    assert!(
        r.stdout
            .ends_with(r#""id":"demo","schema_version":"0.1","volumes":[]}"#),
        "not a terminal, so no newline: {}",
        r.stdout
    );

    // Stdin works too, and formatting is idempotent.
    let again = run_with_stdin(mvmctl().args(["ir", "fmt", "-"]), Some(r.stdout.as_bytes()));
    assert_eq!(again.stdout, r.stdout);
}

#[test]
fn fmt_write_rewrites_the_file_and_check_reports_it() {
    let p = Project::new(&workload(&["app.py"], &[]), &[]);
    let r = run(mvmctl().args(["ir", "fmt", "--check"]).arg(p.ir()));
    assert_eq!(r.code, 1, "pretty-printed IR is not canonical");
    let printed = run(mvmctl().args(["ir", "fmt"]).arg(p.ir())).stdout;
    let r = run(mvmctl().args(["ir", "fmt", "--write"]).arg(p.ir()));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(p.ir()).unwrap(), printed);
    assert_eq!(
        run(mvmctl().args(["ir", "fmt", "--check"]).arg(p.ir())).code,
        0
    );
    assert_eq!(
        names(p.path()),
        ["workload.json"],
        "no temporary file left behind"
    );
}

#[test]
fn fmt_rejects_invalid_ir_with_exit_2() {
    let mut ir = workload(&["app.py"], &[]);
    ir["apps"][0]["entrypoints"][0]["primary"] = json!(false);
    let p = Project::new(&ir, &[]);
    let before = std::fs::read(p.ir()).unwrap();
    let r = run(mvmctl().args(["ir", "fmt", "--write"]).arg(p.ir()));
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains("error[E_PRIMARY_ENTRYPOINT]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.ends_with(&format!(
            "error: {} is not valid Workload IR: 1 error(s), 0 warning(s)\n",
            p.ir().display()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(p.ir()).unwrap(), before);

    let r = run_with_stdin(
        mvmctl().args(["ir", "fmt", "-"]),
        Some(b"{\"schema_version\": \"0.1\""),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("error[E_SCHEMA]"), "{}", r.stderr);
}
