use serde_json::{Value, json};

use super::*;

/// An app: a Python function `greet` in `image`, patched by `edit`.
fn app_with(image: Value, edit: impl FnOnce(&mut Value)) -> App {
    let mut app = json!({
        "name": "t",
        "source": {"kind": "local_path", "path": "."},
        "image": image,
        "entrypoints": [{
            "kind": "function", "name": "greet", "language": "python",
            "module": "app", "function": "greet", "primary": true
        }]
    });
    edit(&mut app);
    let w = json!({"schema_version": "0.1", "id": "t", "apps": [app]});
    let mut w = mvm_ir::decode::from_value(&w).unwrap_or_else(|f| panic!("{f:?}"));
    w.apps.remove(0)
}

fn packages(list: &[&str]) -> Value {
    json!({"kind": "nix_packages", "packages": list})
}

fn codes(found: &[Finding], code: Code) -> Vec<(String, String, String)> {
    found
        .iter()
        .filter(|f| f.code == code)
        .map(|f| (f.path.clone(), f.message.clone(), f.hint.clone()))
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_unbuildable_version_warns_with_builds_own_message() {
    let app = app_with(packages(&["python312", "uv"]), |_| {});
    let found = findings(&app, "python:app.py", &[]);
    let build = Resolver::Debian
        .resolve(&names(&["python312", "uv"]), DepsTool::None)
        .unwrap_err();
    assert_eq!(
        codes(&found, Code::WImageUnbuildable),
        [(
            "/apps/0/image/packages/0".to_string(),
            build.to_string(),
            build.hint()
        )]
    );
    let f = &found[0];
    assert!(!f.is_error());
    assert!(
        f.hint.contains("mvm.python_image(python=\"3.11\")")
            && f.hint.contains("mvm.python_image(python=\"3.13\")"),
        "{}",
        f.hint
    );
    // Python 3.12 is still Python: the function is not also an error.
    assert!(codes(&found, Code::EImageNoRuntime).is_empty());
}

#[test]
fn every_unbuildable_case_the_resolver_knows_is_a_warning() {
    let at = |image: Value, edit: fn(&mut Value)| -> Vec<String> {
        let app = app_with(image, edit);
        codes(&findings(&app, "ir:x.json", &[]), Code::WImageUnbuildable)
            .into_iter()
            .map(|(path, _, _)| path)
            .collect()
    };
    let none: fn(&mut Value) = |_| {};
    assert_eq!(
        at(packages(&["python313", "frobnicate", "nodejs_16"]), none),
        ["/apps/0/image/packages/1", "/apps/0/image/packages/2"]
    );
    assert_eq!(
        at(packages(&["python311", "nodejs_20"]), none),
        ["/apps/0/image/packages/1"]
    );
    assert_eq!(
        at(packages(&["python3", "nodejs_22", "nodejs_24"]), none),
        ["/apps/0/image/packages/2"]
    );
    assert_eq!(
        at(
            json!({"kind": "oci_base", "reference": "python:3.12", "digest": null}),
            none
        ),
        ["/apps/0/image"]
    );
    assert_eq!(
        at(packages(&["python313"]), |a| {
            a["dependencies"] =
                json!({"kind": "python", "lockfile": "requirements.txt", "tool": "pip_tools"})
        }),
        ["/apps/0/dependencies/tool"]
    );
    for fine in [
        packages(&["python313", "uv"]),
        packages(&["python311", "nodejs_22", "curl"]),
        packages(&["python3", "nodejs"]),
    ] {
        assert_eq!(at(fine.clone(), none), Vec::<String>::new(), "{fine}");
    }
}

#[test]
fn an_image_validation_refused_is_not_resolved_again() {
    let app = app_with(packages(&["python313", "bad name"]), |_| {});
    let refused = mvm_ir::validate(&mvm_ir::Workload {
        schema_version: "0.1".into(),
        id: "t".into(),
        apps: vec![app.clone()],
        volumes: Vec::new(),
        extensions: Default::default(),
    });
    assert!(refused.iter().any(|f| f.is_error()));
    assert!(codes(&findings(&app, "ir:x", &refused), Code::WImageUnbuildable).is_empty());
    assert_eq!(
        codes(&findings(&app, "ir:x", &[]), Code::WImageUnbuildable).len(),
        1
    );
}

#[test]
fn a_node_function_in_a_python_image_is_an_error_with_the_helper_to_use() {
    let node = |a: &mut Value| a["entrypoints"][0]["language"] = "node".into();
    let app = app_with(packages(&["python312"]), node);
    let found = findings(&app, "typescript:examples/node/hello-app/app.ts", &[]);
    let errors = codes(&found, Code::EImageNoRuntime);
    assert_eq!(errors.len(), 1, "{found:?}");
    let (path, message, hint) = &errors[0];
    assert_eq!(path, "/apps/0/entrypoints/0/language");
    assert_eq!(
        message,
        "entrypoint `greet` is a TypeScript function and runs on Node, but the image has no Node \
         (nix_packages: python312), so the instance could never run it"
    );
    assert_eq!(
        hint,
        "declare the image with mvm.node_image({ node: \"22\" }), \
         or add \"nodejs_22\" to its mvm.nix_packages([...]) list"
    );
    assert!(found.iter().any(|f| f.is_error()));

    let from_python = findings(&app, "python:app.py", &[]);
    assert!(
        codes(&from_python, Code::EImageNoRuntime)[0]
            .2
            .contains("mvm.node_image(node=\"22\")")
    );
    let from_ir = findings(&app, "ir:workload.json", &[]);
    assert!(
        codes(&from_ir, Code::EImageNoRuntime)[0]
            .2
            .starts_with("add \"nodejs_22\"")
    );

    let fine = app_with(packages(&["nodejs_22"]), node);
    assert!(
        codes(
            &findings(&fine, "typescript:a.ts", &[]),
            Code::EImageNoRuntime
        )
        .is_empty()
    );
}

#[test]
fn a_python_function_needs_some_python_package() {
    for (image, errors) in [
        (vec!["nodejs_18", "curl"], 1),
        (vec![], 1),
        (vec!["python3"], 0),
        (vec!["python311"], 0),
        // Unbuildable (W_IMAGE_UNBUILDABLE says so) but Python all the same.
        (vec!["python39"], 0),
    ] {
        let app = app_with(packages(&image), |_| {});
        let found = codes(&findings(&app, "python:app.py", &[]), Code::EImageNoRuntime);
        assert_eq!(found.len(), errors, "{image:?}: {found:?}");
    }
    // The suggested Python fits the release the image already pins.
    let app = app_with(packages(&["nodejs_18"]), |_| {});
    let found = codes(&findings(&app, "python:app.py", &[]), Code::EImageNoRuntime);
    assert!(
        found[0].2.contains("mvm.python_image(python=\"3.11\")")
            && found[0].2.contains("\"python311\""),
        "{found:?}"
    );
}

#[test]
fn commands_and_argv_hooks_are_checked_by_their_program() {
    let app = app_with(packages(&["nodejs_22"]), |a| {
        a["entrypoints"] = json!([
            {"kind": "command", "name": "serve", "command": ["python", "/app/server.py"], "primary": true},
            {"kind": "command", "name": "tool", "command": ["node", "tool.js"]},
            {"kind": "command", "name": "sh", "command": ["sh", "-c", "python x.py"]}
        ]);
        a["hooks"] = json!({
            "before_start": [
                {"kind": "argv", "argv": ["/usr/bin/python3", "/app/migrate.py"]},
                {"kind": "shell", "line": "python /app/shell-lines-are-not-read.py"}
            ],
            "after_start": [{"kind": "argv", "argv": ["node", "check.js"]}]
        });
        a["addons"] = json!([{
            "name": "tools", "source": {"kind": "local", "path": "addons/tools"},
            "hooks": {"before_build": [{"kind": "argv", "argv": ["python3.13", "gen.py"]}]}
        }]);
    });
    let found = codes(&findings(&app, "python:app.py", &[]), Code::EImageNoRuntime);
    let paths: Vec<&str> = found.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/apps/0/entrypoints/0/command/0",
            "/apps/0/addons/0/hooks/before_build/0/argv/0",
            "/apps/0/hooks/before_start/0/argv/0",
        ]
    );
    assert!(
        found[0]
            .1
            .starts_with("command entrypoint `serve` runs `python`"),
        "{}",
        found[0].1
    );
    assert!(
        found[1]
            .1
            .starts_with("a before_build hook of addon `tools` runs `python3.13`"),
        "{}",
        found[1].1
    );
    assert!(
        found[2].1.contains("nix_packages: nodejs_22"),
        "{}",
        found[2].1
    );
}

#[test]
fn oci_base_images_are_not_guessed_at() {
    let app = app_with(
        json!({"kind": "oci_base", "reference": "node:22", "digest": null}),
        |_| {},
    );
    let found = findings(&app, "python:app.py", &[]);
    assert!(codes(&found, Code::EImageNoRuntime).is_empty());
    assert_eq!(codes(&found, Code::WImageUnbuildable).len(), 1);
}
