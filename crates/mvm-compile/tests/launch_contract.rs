//! Compile's side of the launch contract: every valid workload lowers to a
//! launch.json that `mvm_launch::parse` accepts, and the contract's
//! repeated rules agree with the IR validator's.

use std::path::Path;

use mvm_compile::launch::{Source, launch, launch_json};

fn corpus() -> Vec<(String, mvm_ir::Workload)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/cases");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path().join("expected.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(workload) = mvm_ir::decode::from_str(&text) else {
            continue;
        };
        if mvm_ir::validate(&workload).iter().any(|f| f.is_error()) {
            continue;
        }
        out.push((path.display().to_string(), workload));
    }
    assert!(
        out.len() >= 30,
        "the conformance corpus should hold many valid workloads"
    );
    out
}

const SOURCE: Source<'static> = Source {
    files: 2,
    tree_hash: "0000000000000000000000000000000000000000000000000000000000000000",
};

#[test]
fn every_valid_workload_gives_a_launch_its_readers_accept() {
    for (name, w) in corpus() {
        let text = launch_json(&w, &w.apps[0], &"f".repeat(64), "0.1.0", &SOURCE);
        let parsed = mvm_launch::parse(text.as_bytes()).unwrap_or_else(|e| {
            panic!("{name}: compile wrote a launch.json its readers refuse: {e}")
        });
        assert_eq!(
            parsed,
            launch(&w, &w.apps[0], &"f".repeat(64), "0.1.0", &SOURCE),
            "{name}"
        );
        let app = &w.apps[0];
        assert_eq!(
            u64::from(parsed.resources.memory_mib),
            app.resources.memory_mb,
            "{name}"
        );
        assert_eq!(parsed.entrypoints.len(), app.entrypoints.len(), "{name}");
    }
}

/// The names the back half turns into paths: the contract's grammar must
/// accept exactly what the IR validator accepts.
#[test]
fn the_contracts_name_rules_are_the_irs() {
    let (_, base) = corpus().into_iter().next().unwrap();
    let candidates = [
        "a",
        "hello-app",
        "a1",
        "-a",
        "1a",
        "A",
        "a_b",
        "a.b",
        "",
        "a/b",
        "..",
        &"a".repeat(63),
        &"a".repeat(64),
        "é",
    ];
    for name in candidates {
        let mut w = base.clone();
        w.id = name.to_string();
        let ir_ok = !mvm_ir::validate(&w).iter().any(|f| f.is_error());
        assert_eq!(
            mvm_launch::rules::is_id(name),
            ir_ok,
            "workload id {name:?}"
        );
    }
    for key in ["A", "_a", "a1", "1a", "A-B", "", "É"] {
        let mut w = base.clone();
        w.apps[0].env.clear();
        w.apps[0]
            .env
            .insert(key.into(), mvm_ir::EnvValue::Literal { value: "v".into() });
        let ir_ok = !mvm_ir::validate(&w).iter().any(|f| f.is_error());
        assert_eq!(
            mvm_launch::rules::is_env_name(key),
            ir_ok,
            "env name {key:?}"
        );
    }
    for secret in [
        "a",
        "0.k_v-1",
        "A",
        ".a",
        "",
        &"a".repeat(128),
        &"a".repeat(129),
    ] {
        let mut w = base.clone();
        w.apps[0].env.clear();
        w.apps[0].env.insert(
            "K".into(),
            mvm_ir::EnvValue::SecretRef {
                name: secret.into(),
                auth: Default::default(),
                header: None,
                hosts: Vec::new(),
            },
        );
        let ir_ok = !mvm_ir::validate(&w).iter().any(|f| f.is_error());
        assert_eq!(
            mvm_launch::rules::is_secret_name(secret),
            ir_ok,
            "secret name {secret:?}"
        );
    }
}

/// The `launch_json` fuzz target starts from real launch files: the seeds
/// are what compile writes for two corpus workloads (`MVM_BLESS=1`
/// rewrites them), and they must parse.
/// The header names launch.json accepts for a secret are the ones the IR
/// accepts (mvm-launch repeats the rule: it depends on nothing of ours).
#[test]
fn the_contracts_header_rule_is_the_irs() {
    for name in [
        "X-Api-Key",
        "authorization",
        "x.key_1~",
        "",
        "Host",
        "CONTENT-LENGTH",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-authorization",
        "Proxy-Connection",
        "x key",
        "x:key",
        "x\nkey",
        "é",
    ] {
        assert_eq!(
            mvm_launch::rules::is_header_name(name),
            mvm_ir::validate::secrets::header_problem(name).is_none(),
            "header name {name:?}"
        );
    }
}

#[test]
fn fuzz_seeds_are_launches_compile_writes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/launch_json");
    let bless = std::env::var_os("MVM_BLESS").is_some();
    let corpus = corpus();
    let mut picked: Vec<_> = corpus
        .iter()
        .filter(|(name, _)| {
            name.contains("seed000-env-secrets") || name.contains("seed000-hooks-service")
        })
        .collect();
    picked.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(picked.len(), 2, "the two seed workloads are in the corpus");
    for (i, (_, w)) in picked.iter().enumerate() {
        let text = launch_json(w, &w.apps[0], &"f".repeat(64), "0.1.0", &SOURCE);
        let path = dir.join(format!("seed{i}.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with MVM_BLESS=1", path.display()));
        assert_eq!(
            on_disk,
            text,
            "{} is stale; run with MVM_BLESS=1",
            path.display()
        );
        mvm_launch::parse(on_disk.as_bytes()).unwrap();
    }
}
