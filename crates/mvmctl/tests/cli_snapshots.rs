//! What people read from `mvmctl`, whole: exit code, stdout and stderr of
//! the real binary compared with reviewed snapshots (tests/snapshots/).
//! Nothing here boots a VM; the build → up → down flow is in
//! cli_snapshots_vm.rs. See common/snap.rs for how outputs are made the
//! same on every machine.

#[path = "common/snap.rs"]
#[macro_use]
mod snap;

use std::os::unix::fs::PermissionsExt;

use snap::Sandbox;

/// The Python example every compile case starts from.
const HELLO_PY: &str = "examples/python/hello-app/app.py";
const HELLO_TS: &str = "examples/node/hello-app/app.ts";

/// `text` with one occurrence of `from` replaced; the case is void if the
/// example no longer contains it.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer has {from:?}");
    text.replacen(from, to, 1)
}

/// Compile `file` (already in the sandbox) as text and as JSON, and
/// compare both with their snapshots `<name>_text` / `<name>_json`.
fn compile_both(s: &Sandbox, name: &str, file: &str, expect_code: i32) {
    for (format, extra) in [("text", &[][..]), ("json", &["--format", "json"][..])] {
        let mut args = vec!["compile", file, "--out", "out"];
        args.extend_from_slice(extra);
        let out = s.run(&args, None);
        assert_eq!(out.code, Some(expect_code), "{name} {format}");
        if expect_code != 0 {
            assert!(
                !s.path().join("out").exists(),
                "a refused compile wrote its output"
            );
        }
        snapshot!(format!("{name}_{format}"), s.render(&args, &out));
        let _ = std::fs::remove_dir_all(s.path().join("out"));
    }
}

// ---- compile: the common mistakes -------------------------------------

#[test]
fn compile_syntax_error() {
    let s = Sandbox::new();
    let text = edit(
        &Sandbox::example(HELLO_PY),
        "def greet(name: str) -> str:",
        "def greet(name: str) -> str",
    );
    s.write("app.py", &text);
    compile_both(&s, "compile_syntax_error", "app.py", 2);
}

#[test]
fn compile_unknown_helper() {
    let s = Sandbox::new();
    let text = edit(
        &Sandbox::example(HELLO_PY),
        "mvm.python_image(",
        "mvm.pyhton_image(",
    );
    s.write("app.py", &text);
    compile_both(&s, "compile_unknown_helper", "app.py", 2);
}

#[test]
fn compile_resource_out_of_range() {
    let s = Sandbox::new();
    let text = edit(
        &Sandbox::example(HELLO_PY),
        "memory_mb=256",
        "memory_mb=999999",
    );
    s.write("app.py", &text);
    compile_both(&s, "compile_resource_out_of_range", "app.py", 2);
}

#[test]
fn compile_missing_source_path() {
    let s = Sandbox::new();
    let text = edit(
        &Sandbox::example(HELLO_PY),
        r#"mvm.local_path(".", include=["app.py"])"#,
        r#"mvm.local_path("./missing", include=["app.py"])"#,
    );
    s.write("app.py", &text);
    compile_both(&s, "compile_missing_source_path", "app.py", 2);
}

#[test]
fn compile_wrong_extension() {
    let s = Sandbox::new();
    s.write("app.txt", &Sandbox::example(HELLO_PY));
    compile_both(&s, "compile_wrong_extension", "app.txt", 2);
}

#[test]
fn compile_missing_input_file() {
    let s = Sandbox::new();
    compile_both(&s, "compile_missing_input_file", "nothere.py", 2);
}

#[test]
fn compile_typescript_unknown_helper() {
    let s = Sandbox::new();
    let text = edit(
        &Sandbox::example(HELLO_TS),
        "mvm.node_image(",
        "mvm.nod_image(",
    );
    s.write("app.ts", &text);
    compile_both(&s, "compile_typescript_unknown_helper", "app.ts", 2);
}

#[test]
fn compile_typescript_syntax_error() {
    let s = Sandbox::new();
    let text = edit(&Sandbox::example(HELLO_TS), "})((name", "}((name");
    s.write("app.ts", &text);
    compile_both(&s, "compile_typescript_syntax_error", "app.ts", 2);
}

#[test]
fn compile_ir_schema_errors() {
    let s = Sandbox::new();
    s.write(
        "workload.json",
        r#"{"schema_version": "0.1", "id": "demo", "apps": [{"name": "demo", "colour": "red"}]}"#,
    );
    compile_both(&s, "compile_ir_schema_errors", "workload.json", 2);
}

#[test]
fn compile_ir_invalid_json() {
    let s = Sandbox::new();
    s.write("workload.json", "{\"schema_version\": \"0.1\",\n  \"id\": ");
    compile_both(&s, "compile_ir_invalid_json", "workload.json", 2);
}

// ---- compile: the review of a good workload ----------------------------

#[test]
fn compile_review_of_the_python_example() {
    let s = Sandbox::new();
    s.write("app.py", &Sandbox::example(HELLO_PY));
    compile_both(&s, "compile_review", "app.py", 0);
}

#[test]
fn compile_review_of_the_typescript_example_into_an_archive() {
    let s = Sandbox::new();
    s.write("app.ts", &Sandbox::example(HELLO_TS));
    let args = ["compile", "app.ts", "--out", "hello.tgz"];
    snapshot!("compile_review_archive_text", s.transcript(&args));
    assert!(s.path().join("hello.tgz").is_file());
}

#[test]
fn compile_check_writes_nothing_and_says_so() {
    let s = Sandbox::new();
    s.write("app.py", &Sandbox::example(HELLO_PY));
    snapshot!(
        "compile_check_text",
        s.transcript(&["compile", "app.py", "--check"])
    );
    snapshot!(
        "compile_check_json",
        s.transcript(&["compile", "app.py", "--check", "--format", "json"])
    );
    assert_eq!(
        std::fs::read_dir(s.path()).unwrap().count(),
        1,
        "--check wrote something"
    );
}

/// Warnings do not stop a compile; they are printed and the review says warn.
#[test]
fn compile_warnings_show_in_the_review() {
    let s = Sandbox::new();
    let text = edit(
        &Sandbox::example(HELLO_PY),
        r#""GREETING": mvm.literal("hello"),"#,
        r#""GREETING": mvm.literal("hello"),
        "OPENAI_API_KEY": mvm.literal("sk-test"),"#,
    );
    let text = edit(
        &text,
        "    entrypoint=",
        "    before_build=mvm.hook(\"curl -fsSL https://get.example.com | sh\"),\n    entrypoint=",
    );
    s.write("app.py", &text);
    compile_both(&s, "compile_warnings", "app.py", 0);
}

// ---- help and usage ----------------------------------------------------

#[test]
fn help_and_usage() {
    let s = Sandbox::new();
    snapshot!("help_top", s.transcript(&["--help"]));
    snapshot!("help_compile", s.transcript(&["compile", "--help"]));
    snapshot!("help_up", s.transcript(&["up", "--help"]));
    snapshot!("help_invoke", s.transcript(&["invoke", "--help"]));
    snapshot!("usage_no_command", s.transcript(&[]));
    snapshot!("usage_unknown_command", s.transcript(&["comple"]));
    snapshot!(
        "usage_conflicting_flags",
        s.transcript(&["down", "hello-app", "--all"])
    );
}

#[test]
fn version() {
    let mut s = Sandbox::new();
    // The release changes; that the line is `mvmctl VERSION` does not.
    s.literal(env!("CARGO_PKG_VERSION"), "[VERSION]");
    snapshot!("version", s.transcript(&["--version"]));
}

// ---- doctor ------------------------------------------------------------

/// Stand-ins for the host tools doctor runs: each prints a fixed version
/// line, so the report reads the same on every machine.
fn fake_tools(s: &mut Sandbox) {
    for (name, line) in [
        (
            "qemu-system-x86_64",
            "QEMU emulator version 9.2.0 (fake for tests)",
        ),
        ("python3", "Python 3.13.0"),
        ("node", "v22.0.0"),
        ("mmdebstrap", "mmdebstrap 1.5.0"),
        ("mkfs.ext4", "mke2fs 1.47.2 (1-Jan-2025)"),
        ("apt-get", "apt 3.0.0 (amd64)"),
        ("tsx", "tsx v4.19.0"),
    ] {
        let path = s.write(
            &format!("fake-bin/{name}"),
            &format!("#!/bin/sh\necho '{line}'\n"),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    s.set_env("PATH", s.path().join("fake-bin"));
}

/// doctor's host facts that no environment variable fixes: the OS name
/// and the free space of the store's filesystem.
fn redact_host_facts(s: &mut Sandbox) {
    s.add_filter(r"(?m)^(  \[ok  \] os {13}).*$", "${1}[OS]");
    s.add_filter(
        r#"("name": "os",\s+"ok": true,\s+"required": false,\s+"detail": )"[^"]*""#,
        r#"${1}"[OS]""#,
    );
    s.add_filter(r"\(\d+\.\d GiB free\)", "([N] GiB free)");
}

#[test]
fn doctor_with_every_tool() {
    let mut s = Sandbox::new();
    fake_tools(&mut s);
    s.set_env("MVM_ACCEL", "tcg");
    redact_host_facts(&mut s);
    snapshot!("doctor_every_tool_text", s.transcript(&["doctor"]));
    snapshot!(
        "doctor_every_tool_json",
        s.transcript(&["doctor", "--json"])
    );
}

#[test]
fn doctor_with_no_tools() {
    let mut s = Sandbox::new();
    s.write("empty-bin/.keep", "");
    s.set_env("PATH", s.path().join("empty-bin"));
    s.set_env("MVM_ACCEL", "tcg");
    redact_host_facts(&mut s);
    snapshot!("doctor_no_tools_text", s.transcript(&["doctor"]));
    snapshot!("doctor_no_tools_json", s.transcript(&["doctor", "--json"]));
}

/// On this host, with its real tools: only the report's shape (sections,
/// check names and which are required, the JSON keys) is the same
/// everywhere, so that is what is compared.
#[test]
fn doctor_on_this_host_has_the_same_shape() {
    let s = Sandbox::new();
    let text = s.run(&["doctor"], None);
    let json = s.run(&["doctor", "--json"], None);
    assert_eq!(text.code, json.code);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("doctor --json");
    let mut shape = String::from(
        "The shape of `mvmctl doctor --json` and `mvmctl doctor` on this host\n\
         (values, marks and the verdict differ between machines).\n--json:\n",
    );
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    shape.push_str(&format!("{{{}}}\n", keys(&report)));
    for section in report["sections"].as_array().unwrap() {
        shape.push_str(&format!("  {{{}}}: {}\n", keys(section), section["title"]));
        for c in section["checks"].as_array().unwrap() {
            let required = if c["required"] == true {
                "required"
            } else {
                "optional"
            };
            // `hint` is there for some checks only when they fail.
            let mut k = keys(c);
            k = k.replace(", hint", "");
            shape.push_str(&format!("    {{{k}}}: {} ({required})\n", c["name"]));
        }
    }
    // The text report: a title line per section, a `[mark] name` line per
    // check (hints under failing ones), one verdict line.
    shape.push_str("text:\n");
    let line = regex::Regex::new(r"^  \[(ok  |warn|FAIL)\] (.{14}) \S").unwrap();
    for l in text.stdout.lines() {
        if let Some(m) = line.captures(l) {
            shape.push_str(&format!("  [MARK] {}[DETAIL]\n", &m[2]));
        } else if l.starts_with("         hint: ") {
            continue;
        } else if l.starts_with("The main job ") {
            shape.push_str("[VERDICT]\n");
        } else {
            shape.push_str(&format!("{l}\n"));
        }
    }
    snapshot!("doctor_this_host_shape", shape);
}

// ---- runtime commands without an instance --------------------------------

#[test]
fn runtime_commands_with_nothing_running() {
    let s = Sandbox::new();
    snapshot!("ps_empty_text", s.transcript(&["ps"]));
    snapshot!("ps_empty_json", s.transcript(&["ps", "--json"]));
    snapshot!("down_all_empty", s.transcript(&["down", "--all"]));
    snapshot!("down_no_such_instance", s.transcript(&["down", "nothere"]));
    snapshot!(
        "invoke_no_such_instance",
        s.transcript(&["invoke", "nothere", "--input", "name=ari"])
    );
    snapshot!(
        "invoke_bad_instance_name",
        s.transcript(&["invoke", "Bad Name"])
    );
    snapshot!(
        "invoke_bad_input",
        s.transcript(&["invoke", "hello-app", "--input", "name"])
    );
    snapshot!("logs_no_such_instance", s.transcript(&["logs", "nothere"]));
    snapshot!("up_no_such_image", s.transcript(&["up", "nothere"]));
    snapshot!(
        "build_not_a_compile_output",
        s.transcript(&["build", "nothere"])
    );
}
