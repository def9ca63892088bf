//! Every import form of the SDK is understood statically (docs/sdk.md,
//! declarations.md): each spelling below compiles to the same canonical IR
//! as the plain `import mvm` / `import * as mvm` form, and a name that does
//! not come from the SDK is never taken for one.
//!
//! Each file also holds module-level code that would leave a marker file if
//! any of it ran; none may appear.

use std::fs;
use std::path::{Path, PathBuf};

use mvm_decl::{Outcome, compile_declaration};
use mvm_ir::Code;

/// Compiles `source` as `dir/name`; returns the canonical IR.
fn ir(dir: &Path, name: &str, source: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, source).unwrap();
    match compile_declaration(&path, source, Path::new(name)) {
        Ok(Outcome::Declared(d)) => mvm_ir::to_canonical_string(&d.workload),
        other => panic!("{name} did not compile statically:\n{source}\n{other:?}"),
    }
}

fn error(name: &str, source: &str) -> mvm_ir::Finding {
    match compile_declaration(Path::new(name), source, Path::new(name)) {
        Err(f) => f.into_iter().next().unwrap(),
        Ok(o) => panic!("{name} was accepted: {o:?}\n{source}"),
    }
}

fn marker(dir: &Path) -> PathBuf {
    dir.join("marker-ran")
}

#[test]
fn python_import_forms_compile_to_the_same_ir() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker(dir.path()).display().to_string();
    let touch = format!("open({m:?}, \"w\").close()\n");
    let body = |head: &str, app: &str, local: &str, image: &str| {
        format!(
            "{head}\n{touch}\n@{app}(name=\"forms\", source={local}(\".\", include=[\"app.py\"]), image={image}(python=\"3.12\"))\ndef run() -> None:\n    {touch}"
        )
    };
    let reference = ir(
        dir.path(),
        "app.py",
        &body(
            "import mvm",
            "mvm.app",
            "mvm.local_path",
            "mvm.python_image",
        ),
    );
    for (head, app, local, image) in [
        ("import mvm as m", "m.app", "m.local_path", "m.python_image"),
        (
            "import mvm.helpers",
            "mvm.app",
            "mvm.local_path",
            "mvm.python_image",
        ),
        (
            "from mvm import app, local_path, python_image",
            "app",
            "local_path",
            "python_image",
        ),
        (
            "from mvm import app as declare, local_path as lp, python_image as pi",
            "declare",
            "lp",
            "pi",
        ),
        ("from mvm import *", "app", "local_path", "python_image"),
        // Mixed: the decorator by name, helpers through the module.
        (
            "import mvm\nfrom mvm import app",
            "app",
            "mvm.local_path",
            "mvm.python_image",
        ),
    ] {
        let source = body(head, app, local, image);
        assert_eq!(ir(dir.path(), "app.py", &source), reference, "{source}");
    }
    assert!(!marker(dir.path()).exists(), "user code ran");
}

#[test]
fn typescript_import_forms_compile_to_the_same_ir() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker(dir.path()).display().to_string();
    let touch = format!("writeFileSync({m:?}, \"x\");");
    let body = |head: &str, app: &str, local: &str, image: &str| {
        format!(
            "import {{ writeFileSync }} from \"node:fs\";\n{head}\n{touch}\nexport const run = {app}({{ name: \"forms\", source: {local}(\".\", {{ include: [\"app.ts\"] }}), image: {image}({{ node: \"22\" }}) }})(() => {{ {touch} }});\n"
        )
    };
    let reference = ir(
        dir.path(),
        "app.ts",
        &body(
            "import * as mvm from \"mvm-sdk\";",
            "mvm.app",
            "mvm.localPath",
            "mvm.nodeImage",
        ),
    );
    for (head, app, local, image) in [
        (
            "import * as sdk from \"mvm-sdk\";",
            "sdk.app",
            "sdk.localPath",
            "sdk.nodeImage",
        ),
        (
            "import { app, localPath, nodeImage } from \"mvm-sdk\";",
            "app",
            "localPath",
            "nodeImage",
        ),
        (
            "import { app as declare, local_path as lp, nodeImage as ni } from \"mvm-sdk\";",
            "declare",
            "lp",
            "ni",
        ),
        // The SDK has no default export: a default import is read as the namespace.
        (
            "import m from \"mvm-sdk\";",
            "m.app",
            "m.localPath",
            "m.nodeImage",
        ),
        (
            "import { default as m } from \"mvm-sdk\";",
            "m.app",
            "m.localPath",
            "m.nodeImage",
        ),
        (
            "import m, { app } from \"mvm-sdk\";",
            "app",
            "m.localPath",
            "m.nodeImage",
        ),
        (
            "import * as m from \"npm:mvm-sdk@0.1.0\";",
            "m.app",
            "m.localPath",
            "m.nodeImage",
        ),
        (
            "import m = require(\"mvm-sdk\");",
            "m.app",
            "m.localPath",
            "m.nodeImage",
        ),
        (
            "const m = require(\"mvm-sdk\");",
            "m.app",
            "m.localPath",
            "m.nodeImage",
        ),
        (
            "const { app, localPath: lp, nodeImage } = await import(\"mvm-sdk\");",
            "app",
            "lp",
            "nodeImage",
        ),
        (
            "import * as m from \"mvm-sdk\";",
            "m[\"app\"]",
            "m.localPath",
            "(m.nodeImage)",
        ),
    ] {
        let source = body(head, app, local, image);
        assert_eq!(ir(dir.path(), "app.ts", &source), reference, "{source}");
    }
    assert!(!marker(dir.path()).exists(), "user code ran");
}

/// A function of the file's own that happens to be called `app` (or `mvm`)
/// is not the SDK's: no declaration, so the file is not compiled as one.
#[test]
fn names_not_imported_from_the_sdk_are_not_helpers() {
    let py_local =
        "def app(**kw):\n    return lambda f: f\n\n@app(name=\"mine\")\ndef f():\n    pass\n";
    assert_eq!(error("app.py", py_local).code, Code::ENoDeclaration);
    // Imported from elsewhere, or rebound after the SDK import.
    for src in [
        "from other import app\n\n@app(name=\"x\")\ndef f():\n    pass\n",
        "from mvm import app\n\ndef app(**kw):\n    return lambda f: f\n\n@app(name=\"x\")\ndef f():\n    pass\n",
        "import mvm\nmvm = object()\n\n@mvm.app(name=\"x\")\ndef f():\n    pass\n",
        "import other as mvm\n\n@mvm.app(name=\"x\")\ndef f():\n    pass\n",
    ] {
        let f = error("app.py", src);
        assert!(
            matches!(f.code, Code::ENoDeclaration | Code::EHelperUnknown),
            "{src}: {f}"
        );
    }
    let ts_local = "function app(o: object) { return (f: Function) => f; }\nexport const f = app({ name: \"mine\" })(() => 1);\n";
    assert_eq!(error("app.ts", ts_local).code, Code::ENoDeclaration);
    for src in [
        "import { app } from \"not-mvm-sdk\";\nexport const f = app({ name: \"x\" })(() => 1);\n",
        // Type-only imports bind nothing at run time.
        "import type { app } from \"mvm-sdk\";\nexport const f = app({ name: \"x\" })(() => 1);\n",
        "import { type app } from \"mvm-sdk\";\nexport const f = app({ name: \"x\" })(() => 1);\n",
    ] {
        assert_eq!(error("app.ts", src).code, Code::ENoDeclaration, "{src}");
    }
}

/// `mvm.app` in a file that never imports `mvm` names the missing import.
#[test]
fn an_unimported_mvm_is_named() {
    assert_eq!(
        error("app.py", "@mvm.app(name=\"x\")\ndef f():\n    pass\n").to_string(),
        "app.py:1:2: error[E_HELPER_UNKNOWN]: `mvm.app` does not refer to the SDK: `mvm` is not imported in this file\n  \
         hint: add `import mvm` (or `from mvm import app`) at the top of the file"
    );
    assert_eq!(
        error(
            "app.py",
            "from mvm import app\n\n@app(name=\"x\", source=mvm.local_path(\".\"))\ndef f():\n    pass\n"
        )
        .to_string(),
        "app.py:3:23: error[E_HELPER_UNKNOWN]: `mvm.local_path` does not refer to the SDK: `mvm` is not imported in this file\n  \
         hint: add `import mvm` (or `from mvm import app`) at the top of the file"
    );
    assert_eq!(
        error(
            "app.ts",
            "export const f = mvm.app({ name: \"x\" })(() => 1);\n"
        )
        .to_string(),
        "app.ts:1:18: error[E_HELPER_UNKNOWN]: `mvm.app` does not refer to the SDK: `mvm` is not imported in this file\n  \
         hint: add `import * as mvm from \"mvm-sdk\"` (or `import { app } from \"mvm-sdk\"`) at the top of the file"
    );
}

/// Misspellings are suggested under the name the file uses.
#[test]
fn suggestions_use_the_files_own_prefix() {
    let f = error(
        "app.py",
        "import mvm as m\n\nm.worklaod(id=\"x\")\n\n@m.app(name=\"x\")\ndef f():\n    pass\n",
    );
    assert_eq!(f.code, Code::EHelperUnknown);
    assert_eq!(f.hint, "did you mean m.workload?");
    let f = error(
        "app.ts",
        "import * as sdk from \"mvm-sdk\";\nexport const f = sdk.ap({ name: \"x\" })(() => 1);\n",
    );
    assert_eq!(f.hint, "did you mean sdk.app?");
}
