use std::io;
use std::path::{Path, PathBuf};

use mvm_compile::CompileRequest;
use mvm_ir::{Code, Entrypoint};

use super::*;

const IR: &str = r#"{"schema_version":"0.1","id":"svc","apps":[{"name":"svc",
    "source":{"kind":"local_path","path":"."},"image":{"kind":"nix_packages","packages":[]},
    "entrypoints":[{"kind":"command","name":"main","command":["true"]}]}]}"#;

const PY: &str =
    "import mvm\n\n@mvm.app(name=\"tool\")\ndef run(prompt: str) -> str:\n    return prompt\n";

const TS: &str = "import * as mvm from \"mvm-sdk\";\n\nexport const tool = mvm.app({ name: \"tool\" })((p: string) => p);\n";

const SANDBOX_SCRIPT: &str =
    "import { Sandbox } from \"mvm-sdk\";\n\nawait Sandbox.create({ template: \"node-22\" });\n";

fn load_quietly(
    input: &Input,
    opts: &LoadOptions,
    stdin: &str,
) -> Result<CompileRequest, InputError> {
    let mut notices = Vec::new();
    let out = load(input, opts, &mut stdin.as_bytes(), &mut |n| notices.push(n));
    assert!(
        notices.is_empty(),
        "nothing ran, so nothing to tell: {notices:?}"
    );
    out
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn rejected(e: InputError) -> Vec<mvm_ir::Finding> {
    match e {
        InputError::Rejected(f) => f,
        other => panic!("expected findings, got {other:?}"),
    }
}

#[test]
fn classification_by_extension() {
    let p = |s: &str| PathBuf::from(s);
    assert_eq!(classify(&p("-")).unwrap(), Input::IrStdin);
    assert_eq!(
        classify(&p("w/workload.json")).unwrap(),
        Input::IrFile(p("w/workload.json"))
    );
    for decl in ["app.py", "src/app.ts", "app.mts"] {
        assert_eq!(
            classify(&p(decl)).unwrap(),
            Input::Declaration(p(decl)),
            "{decl}"
        );
    }
    // .cts is not a declaration (see mvm_decl::lang_for_path), nor is
    // anything else: the error names the file and says what is accepted.
    for unknown in ["app.cts", "app.yaml", "app", "app.JSON", "-.py.txt", "./-"] {
        let e = classify(&p(unknown)).unwrap_err();
        assert!(
            matches!(&e, InputError::UnknownKind(path) if path == &p(unknown)),
            "{unknown}: {e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("{unknown}: not a declaration or Workload IR file")
        );
        assert!(e.hint().unwrap().contains("(.ts, .mts)"));
    }
}

#[test]
fn classification_agrees_with_the_declaration_front_end() {
    for ext in [
        "py", "ts", "mts", "cts", "tsx", "js", "mjs", "pyi", "json", "",
    ] {
        let path = PathBuf::from(format!("app.{ext}"));
        let is_decl = matches!(classify(&path), Ok(Input::Declaration(_)));
        assert_eq!(is_decl, mvm_decl::lang_for_path(&path).is_some(), "{ext}");
    }
}

#[test]
fn from_ir_takes_any_extension() {
    assert_eq!(from_ir(Path::new("-")), Input::IrStdin);
    assert_eq!(from_ir(Path::new("w.txt")), Input::IrFile("w.txt".into()));
    assert_eq!(from_ir(Path::new("app.py")), Input::IrFile("app.py".into()));
}

#[test]
fn ir_on_stdin_resolves_from_the_current_directory_unless_told() {
    let req = load_quietly(&Input::IrStdin, &LoadOptions::default(), IR).unwrap();
    assert_eq!(
        (req.origin.as_str(), req.source_root.as_path()),
        ("ir:-", Path::new("."))
    );
    assert_eq!(req.workload.id, "svc");
    let opts = LoadOptions {
        source_root: Some("/elsewhere".into()),
        ..LoadOptions::default()
    };
    let req = load_quietly(&Input::IrStdin, &opts, IR).unwrap();
    assert_eq!(req.source_root, Path::new("/elsewhere"));

    let f = rejected(load_quietly(&Input::IrStdin, &LoadOptions::default(), "{").unwrap_err());
    assert_eq!(f[0].code, Code::ESchema);

    struct Broken;
    impl io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("gone"))
        }
    }
    let e = load(
        &Input::IrStdin,
        &LoadOptions::default(),
        &mut Broken,
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "cannot read Workload IR from stdin: gone");
    assert_eq!(
        e.hint(),
        Some("pipe Workload IR JSON into `mvmctl compile -`")
    );
}

#[test]
fn an_ir_file_resolves_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "w/workload.json", IR);
    let req = load_quietly(&Input::IrFile(path.clone()), &LoadOptions::default(), "").unwrap();
    assert_eq!(req.origin, format!("ir:{}", path.display()));
    assert_eq!(req.source_root, dir.path().join("w"));
    // A bare file name lies in the current directory.
    assert_eq!(directory_of(Path::new("workload.json")), Path::new("."));

    let missing = dir.path().join("none.json");
    let e = load_quietly(&Input::IrFile(missing.clone()), &LoadOptions::default(), "").unwrap_err();
    assert!(
        matches!(&e, InputError::Read { path, .. } if path == &missing),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read {}: ", missing.display()))
    );
    assert!(e.findings().is_empty() && e.hint().is_some());
}

#[test]
fn declarations_are_read_statically_and_name_their_language() {
    let dir = tempfile::tempdir().unwrap();
    let py = write(dir.path(), "src/tool.py", PY);
    let req = load_quietly(&Input::Declaration(py.clone()), &LoadOptions::default(), "").unwrap();
    assert_eq!(req.origin, format!("python:{}", py.display()));
    assert_eq!(req.source_root, dir.path().join("src"));
    assert!(!req.spans.is_empty());

    // With the source root above it, its path there names the module.
    let opts = LoadOptions {
        source_root: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let req = load_quietly(&Input::Declaration(py), &opts, "").unwrap();
    match &req.workload.apps[0].entrypoints[..] {
        [Entrypoint::Function { module, .. }] => assert_eq!(module, "src.tool"),
        other => panic!("{other:?}"),
    }

    let ts = write(dir.path(), "app.mts", TS);
    let req = load_quietly(&Input::Declaration(ts.clone()), &LoadOptions::default(), "").unwrap();
    assert_eq!(req.origin, format!("typescript:{}", ts.display()));

    let bad = write(dir.path(), "bad.py", "import mvm\n");
    let f =
        rejected(load_quietly(&Input::Declaration(bad), &LoadOptions::default(), "").unwrap_err());
    assert_eq!(f[0].code, Code::ENoDeclaration);
}

#[test]
fn a_sandbox_script_is_refused_unless_host_runs_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "rec.ts", SANDBOX_SCRIPT);
    // Whatever runner this machine has, the default policy runs nothing.
    let f = rejected(
        load_quietly(&Input::Declaration(script), &LoadOptions::default(), "").unwrap_err(),
    );
    assert_eq!(f[0].code, Code::EHostRunRefused);
    assert_eq!(f[0].location.as_ref().map(|l| l.line), Some(3));
}

#[test]
fn a_recording_is_lowered_with_its_files_inside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let recording = |source_root: &Path| {
        format!(
            r#"{{"recording_version":1,"sdk":{{"language":"python","version":"0.1.0"}},"source_root":"{}",
            "sandboxes":[{{"template":"python-3.13","env":{{}},"include":["*.py"],"resources":{{}},"network":{{}},
            "operations":[{{"op":"write","path":"/app/a.txt","data_b64":"aGkK"}},{{"op":"run","cmd":"python3 main.py","background":false}}]}}]}}"#,
            source_root.display()
        )
    };
    let path = write(dir.path(), "rec.json", &recording(&root));
    let req = load_quietly(&Input::Recording(path.clone()), &LoadOptions::default(), "").unwrap();
    assert_eq!(req.origin, format!("recording:{}", path.display()));
    assert_eq!(req.source_root, root);
    assert_eq!(req.extra_files["a.txt"], b"hi\n");

    // A source_root outside the recording's directory is refused, unless
    // --source-root chooses the directory instead.
    let elsewhere = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "far.json", &recording(elsewhere.path()));
    let f = rejected(
        load_quietly(&Input::Recording(path.clone()), &LoadOptions::default(), "").unwrap_err(),
    );
    assert_eq!(f[0].code, Code::ESourceEscapes);
    let opts = LoadOptions {
        source_root: Some(elsewhere.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let req = load_quietly(&Input::Recording(path), &opts, "").unwrap();
    assert_eq!(req.source_root, elsewhere.path());

    let not_one = write(dir.path(), "not.json", IR);
    let f = rejected(
        load_quietly(&Input::Recording(not_one), &LoadOptions::default(), "").unwrap_err(),
    );
    assert_eq!(
        (f[0].code, f[0].path.as_str()),
        (Code::ESchema, "/recording_version")
    );
    assert!(f[0].hint.contains("docs/recording.md"));
}
