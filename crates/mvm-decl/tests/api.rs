//! The public API as the CLI uses it: language detection, outcomes, located
//! warnings, and the pointer → location map.

use std::path::Path;

use mvm_decl::{Lang, Outcome, compile_declaration, lang_for_path};
use mvm_ir::{Code, Location};

fn declared(file: &str, source: &str) -> mvm_decl::Declared {
    match compile_declaration(Path::new(file), source, Path::new(file)) {
        Ok(Outcome::Declared(d)) => d,
        other => panic!("expected a declaration, got {other:?}"),
    }
}

#[test]
fn languages_by_extension() {
    assert_eq!(lang_for_path(Path::new("a/app.py")), Some(Lang::Python));
    assert_eq!(lang_for_path(Path::new("app.ts")), Some(Lang::TypeScript));
    assert_eq!(lang_for_path(Path::new("app.mts")), Some(Lang::TypeScript));
    assert_eq!(lang_for_path(Path::new("workload.json")), None);
}

/// Only a TypeScript file that uses the SDK's Sandbox and no form of its
/// `app` is a recording script; anything else without a declaration is an
/// error, so the CLI never falls back to running it.
#[test]
fn only_sandbox_scripts_lack_a_declaration_without_an_error() {
    let ts = |src: &str| compile_declaration(Path::new("app.ts"), src, Path::new("app.ts"));
    let out = ts("import { Sandbox } from \"mvm-sdk\";\n\nawait Sandbox.create({});\n").unwrap();
    let Outcome::SandboxScript { at } = out else {
        panic!("expected a Sandbox script, got {out:?}")
    };
    assert_eq!((at.line, at.column), (3, 7));
    let out = ts("import * as m from \"mvm-sdk\";\nawait m.Sandbox.create({});\n").unwrap();
    assert!(matches!(out, Outcome::SandboxScript { .. }), "{out:?}");

    for src in [
        // Nothing from the SDK at all.
        "console.log(1);\n",
        // A Sandbox of someone else's.
        "import { Sandbox } from \"other\";\nawait Sandbox.create({});\n",
        // `app` used, but not as a module-level declaration.
        "import { app, Sandbox } from \"mvm-sdk\";\nfunction f() { return app({})(() => 1); }\nawait Sandbox.create({});\n",
        // The namespace handed around may reach `app`.
        "import * as m from \"mvm-sdk\";\nconst { app } = m;\nawait m.Sandbox.create({});\n",
        "import * as m from \"mvm-sdk\";\nconst k = \"app\";\nm[k];\nawait m.Sandbox.create({});\n",
    ] {
        let err = ts(src).unwrap_err();
        assert_eq!(err[0].code, Code::ENoDeclaration, "{src}: {}", err[0]);
    }
    let err =
        compile_declaration(Path::new("app.py"), "print(1)\n", Path::new("app.py")).unwrap_err();
    assert_eq!(err[0].code, Code::ENoDeclaration);
}

#[test]
fn spans_point_at_the_source() {
    let src = "import mvm\n\n@mvm.app(\n    name=\"n\",\n    network=mvm.network(mode=\"deny\", allow_https=[\"b.example\", \"a.example\"]),\n)\ndef f():\n    pass\n";
    let d = declared("app.py", src);
    let at = |line, column| Location {
        file: "app.py".into(),
        line,
        column,
    };
    // Sorted: a.example first, and its span follows it.
    assert_eq!(
        d.spans["/apps/0/network/egress/allowlist/0/host"],
        at(5, 64)
    );
    assert_eq!(
        d.spans["/apps/0/network/egress/allowlist/1/host"],
        at(5, 51)
    );
    assert_eq!(d.spans["/apps/0/name"], at(4, 10));
    assert_eq!(d.spans["/id"], at(4, 10));
}

#[test]
fn warnings_are_kept_and_located() {
    let d = declared(
        "app.ts",
        "import * as mvm from \"mvm-sdk\";\nexport const f = mvm.app({ image: mvm.ociImage(\"debian:12\") })(() => 1);\n",
    );
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].code, Code::WOciMutable);
    assert_eq!(
        d.findings[0].location,
        Some(Location {
            file: "app.ts".into(),
            line: 2,
            column: 35
        })
    );
}

#[test]
fn hostile_nesting_is_rejected_not_overflowed() {
    let deep = format!(
        "import mvm\n@mvm.app(name={}1{})\ndef f():\n    pass\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    let err = compile_declaration(Path::new("app.py"), &deep, Path::new("app.py")).unwrap_err();
    assert_eq!(err[0].code, Code::EDeclTooDeep);
}

/// Every prefix of every corpus declaration (a file cut off mid-edit) gives
/// findings or a workload, never a panic.
#[test]
fn truncated_declarations_never_panic() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/cases");
    let mut checked = 0;
    for case in std::fs::read_dir(cases).unwrap() {
        let case = case.unwrap().path();
        for name in ["app.py", "app.ts"] {
            let Ok(source) = std::fs::read_to_string(case.join(name)) else {
                continue;
            };
            for (cut, _) in source.char_indices() {
                let _ = compile_declaration(Path::new(name), &source[..cut], Path::new(name));
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} prefixes checked");
}
