//! Hostile nesting gets an `E_DECL_TOO_DEEP` finding at file:line:col, never
//! a stack overflow (which aborts the whole process, so a regression fails
//! this test binary outright). Each shape below overflowed before the
//! nesting limits existed.

use std::path::Path;

use mvm_decl::{Outcome, compile_declaration};
use mvm_ir::Code;

fn refused(name: &str, source: &str) -> (u32, u32) {
    match compile_declaration(Path::new(name), source, Path::new(name)) {
        Err(f) => {
            assert_eq!(f[0].code, Code::EDeclTooDeep, "{name}: {}", f[0]);
            assert!(!f[0].hint.is_empty());
            let loc = f[0].location.as_ref().expect("located");
            (loc.line, loc.column)
        }
        Ok(o) => panic!("{name} was accepted: {o:?}"),
    }
}

#[test]
fn ten_thousand_parentheses() {
    let n = 10_000;
    let ts = format!(
        "import * as mvm from \"mvm-sdk\";\nexport const f = mvm.app({{ name: {}\"a\"{} }})(() => 1);\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    // `mvm.app({` opens two brackets and the first `(` of the run is at
    // column 34, so the 257th bracket is that run's 255th `(`.
    assert_eq!(refused("app.ts", &ts), (2, 34 + 254));
    let py = format!(
        "import mvm\n\n@mvm.app(name={}\"a\"{})\ndef f():\n    pass\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    // `@mvm.app(` opens one bracket; the run starts at column 15.
    assert_eq!(refused("app.py", &py), (3, 15 + 255));
    let py_lists = format!("x = {}1{}\n", "[".repeat(n), "]".repeat(n));
    assert_eq!(refused("app.py", &py_lists), (1, 5 + 256));
}

#[test]
fn typescript_shapes() {
    let r = |s: &str, k: usize| s.repeat(k);
    for (what, src) in [
        (
            "arrays",
            format!("x = {}1{};", r("[", 10_000), r("]", 10_000)),
        ),
        (
            "objects",
            format!("x = {}1{};", r("{a:", 10_000), r("}", 10_000)),
        ),
        ("blocks", format!("{}{}", r("{", 10_000), r("}", 10_000))),
        (
            "calls",
            format!("x = {}1{};", r("f(", 10_000), r(")", 10_000)),
        ),
        (
            "templates",
            format!("x = {}1{};", r("`${", 10_000), r("}`", 10_000)),
        ),
        ("unclosed", format!("x = {}", r("(", 100_000))),
        ("negations", format!("x = {}1;", r("!", 100_000))),
        ("conditionals", format!("x = {}1;", r("1 ? 1 : ", 50_000))),
        ("arrows", format!("x = {}1;", r("a => ", 50_000))),
        ("assignments", format!("{}1;", r("a = ", 50_000))),
        ("if chains", format!("{}x;", r("if (1)\n", 50_000))),
        (
            "else-if chains",
            format!("if (1) x;{}", r(" else if (1) x;", 50_000)),
        ),
        ("labels", format!("{}x;", r("a: ", 50_000))),
        ("new", format!("x = {}a;", r("new ", 50_000))),
        (
            "generics",
            format!("let x: {}number{};", r("A<", 50_000), r(">", 50_000)),
        ),
        (
            // A `,` between type arguments does not end their nesting.
            "generics with commas",
            format!("let x: {}number{};", r("A<1,", 200_000), r(">", 200_000)),
        ),
        (
            "conditional types",
            format!("type T = {}1;", r("A extends B ? 1 : ", 50_000)),
        ),
        ("members", format!("x = a{};", r(".b", 100_000))),
        ("member call", format!("mvm{}();", r(".b", 100_000))),
        ("sums", format!("x = 1{};", r(" + 1", 100_000))),
    ] {
        let (line, col) = refused("app.ts", &src);
        assert!(line >= 1 && col >= 1, "{what}");
    }
}

#[test]
fn python_shapes() {
    let r = |s: &str, k: usize| s.repeat(k);
    for (what, src) in [
        (
            "calls",
            format!("x = {}1{}\n", r("f(", 10_000), r(")", 10_000)),
        ),
        ("unclosed", format!("x = {}\n", r("(", 100_000))),
        ("not", format!("x = {}1\n", r("not ", 100_000))),
        ("negations", format!("x = {}1\n", r("-", 100_000))),
        ("attributes", format!("x = a{}\n", r(".b", 100_000))),
        ("attribute call", format!("mvm{}()\n", r(".b", 100_000))),
        (
            "decorator",
            format!("@mvm{}\ndef f(): pass\n", r(".b", 100_000)),
        ),
        ("sums", format!("x = 1{}\n", r("+1", 200_000))),
        (
            "conditionals",
            format!("x = {}1\n", r("1 if 1 else ", 50_000)),
        ),
        ("lambdas", format!("x = {}1\n", r("lambda: ", 50_000))),
        ("powers", format!("x = {}1\n", r("1**", 50_000))),
    ] {
        let (line, col) = refused("app.py", &src);
        assert!(line >= 1 && col >= 1, "{what}");
    }
}

/// The limits leave ordinary files alone: long files, long lists, many
/// statements, ASI style, a few levels of everything.
#[test]
fn ordinary_files_are_not_refused() {
    let decl_ts = "import * as mvm from \"mvm-sdk\";\nexport const f = mvm.app({ name: \"big\", env: { A: \"1\" } })((x: string) => (x ? [[[x]]] : !x ? `${x}` : x));\n";
    let filler = "let v = !a ? typeof b : c => d => (e) => [f, { g: h }];\nif (a) b(); else if (c) d(); else e()\nconst s = \"((((\" + '[[[[' + `${ '{{{' }`\n";
    let ts = format!("{decl_ts}{}", filler.repeat(3_000));
    match compile_declaration(Path::new("app.ts"), &ts, Path::new("app.ts")) {
        Ok(Outcome::Declared(d)) => assert_eq!(d.workload.apps[0].name, "big"),
        other => panic!("{other:?}"),
    }
    let py = format!(
        "import mvm\n\n{}@mvm.app(name=\"big\", env={{\"A\": \"1\"}})\ndef f(x=[[[1]]]):\n    return not x if x else (x, [x], {{'k': x}})\n",
        "y = not a if b else (c, [d], {'e': (f)}) + 1 + 2 + 3\n".repeat(3_000)
    );
    match compile_declaration(Path::new("app.py"), &py, Path::new("app.py")) {
        Ok(Outcome::Declared(d)) => assert_eq!(d.workload.apps[0].name, "big"),
        other => panic!("{other:?}"),
    }
}
