//! Runs every case of the conformance corpus (`conformance/cases/*`, format in
//! `conformance/README.md`) through `compile_declaration` and compares the
//! canonical IR bytes or the first error's code and position.
//! `MVM_BLESS=1` rewrites the expected files instead (review them by eye).

use std::fs;
use std::path::{Path, PathBuf};

use mvm_decl::{Outcome, compile_declaration};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/cases")
}

/// The declaration file of a case, relative to the case directory (the source root): `declaration.txt` names it, else `app.py` or `app.ts`.
fn declaration_of(case: &Path) -> PathBuf {
    if let Ok(rel) = fs::read_to_string(case.join("declaration.txt")) {
        return PathBuf::from(rel.trim());
    }
    for name in ["app.py", "app.ts"] {
        if case.join(name).exists() {
            return PathBuf::from(name);
        }
    }
    panic!("{}: no app.py, app.ts or declaration.txt", case.display());
}

/// The actual result of a case in the corpus's own format: (file name, contents).
fn run_case(case: &Path) -> (&'static str, String) {
    let rel = declaration_of(case);
    let source = fs::read_to_string(case.join(&rel)).unwrap();
    // Source paths are relative to the declaration's own directory, so the
    // declaration's path relative to that directory is its file name.
    let in_own_dir = Path::new(rel.file_name().expect("a file"));
    match compile_declaration(&rel, &source, in_own_dir) {
        Ok(Outcome::Declared(d)) => ("expected.json", mvm_ir::to_canonical_string(&d.workload)),
        Ok(Outcome::SandboxScript { .. }) => ("expected_no_declaration", String::new()),
        Err(findings) => {
            let first = findings
                .iter()
                .find(|f| f.is_error())
                .expect("an Err holds at least one error");
            let loc = first
                .location
                .as_ref()
                .expect("every declaration finding is located");
            let json = serde_json::json!({"code": first.code.as_str(), "line": loc.line, "column": loc.column});
            (
                "expected_error.json",
                format!("{}\n", serde_json::to_string(&json).unwrap()),
            )
        }
    }
}

#[test]
fn corpus() {
    let bless = std::env::var_os("MVM_BLESS").is_some_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "the corpus should hold at least 40 cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let (file, actual) = run_case(case);
        if bless {
            for stale in [
                "expected.json",
                "expected_error.json",
                "expected_no_declaration",
            ] {
                let _ = fs::remove_file(case.join(stale));
            }
            fs::write(case.join(file), &actual).unwrap();
            continue;
        }
        match fs::read_to_string(case.join(file)) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: {file} differs\n  expected: {expected}\n  actual:   {actual}",
                case.display()
            )),
            Err(_) => failures.push(format!(
                "{}: produced {file} but it is not expected:\n  {actual}",
                case.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `pair-<name>-py` and `pair-<name>-ts` declare the same workload: their IR
/// must be byte-identical apart from the entrypoint language.
#[test]
fn python_and_typescript_pairs_agree() {
    let mut pairs = 0;
    for entry in fs::read_dir(cases_dir()).unwrap() {
        let py = entry.unwrap().path();
        let name = py.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name
            .strip_prefix("pair-")
            .and_then(|n| n.strip_suffix("-py"))
        else {
            continue;
        };
        let ts = cases_dir().join(format!("pair-{stem}-ts"));
        let (_, py_ir) = run_case(&py);
        let (_, ts_ir) = run_case(&ts);
        assert_eq!(
            py_ir.replace("\"language\":\"python\"", "\"language\":\"node\""),
            ts_ir,
            "pair {stem}"
        );
        pairs += 1;
    }
    assert!(
        pairs >= 2,
        "expected at least two Python/TypeScript pairs, found {pairs}"
    );
}
