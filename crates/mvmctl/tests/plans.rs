//! End to end, as an operator runs it: keys, `plan`, `sign`, `verify`,
//! `up --plan` under a policy that requires signatures, each tampering
//! refused with its own code before anything boots, and the audit trail
//! those steps leave. Real image, real microVM, as in e2e_examples.rs.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use vm_env::{Env, serial};

const APP: &str = "examples/python/hello-app/app.py";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `up` refused with `code`, before booting (no instance is left).
fn refused(env: &Env, args: &[&str], code: &str) -> String {
    let out = env.mvmctl(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?} must fail: {err}");
    assert!(err.contains(code), "{args:?}: expected {code} in: {err}");
    assert!(err.contains("hint:"), "{err}");
    let ps = env.ok(&["ps", "--json"]);
    assert_eq!(ps.trim(), "[]", "a refused up leaves no instance");
    err
}

struct Operator {
    env: Env,
    compiled: String,
}

impl Operator {
    fn path(&self, name: &str) -> PathBuf {
        self.env.tmp.path().join(name)
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// `mvmctl plan` then `mvmctl sign --key alice` into `name`.
    fn signed_plan(&self, name: &str, extra: &[&str]) -> PathBuf {
        let p = self.path(name);
        let mut args = vec!["plan", &self.compiled, "--out", Self::s(&p)];
        args.extend_from_slice(extra);
        self.env.ok(&args);
        self.env.ok(&["sign", Self::s(&p), "--key", "alice"]);
        p
    }

    fn policy(&self, text: &str) {
        let p = self.env.home().join("policy.toml");
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn up_plan(&self, plan: &Path) -> Output {
        self.env
            .mvmctl(&["up", "--plan", Self::s(plan), "--timeout-ready", "120"])
    }

    fn envelope(&self, plan: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(plan).unwrap()).unwrap()
    }

    fn write_envelope(&self, name: &str, v: &Value) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
        p
    }

    fn audit(&self) -> Vec<Value> {
        self.env
            .ok(&["audit", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Flips one byte of `path` for the duration of `f`.
fn with_flipped_byte(path: &Path, offset: u64, f: impl FnOnce()) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    file.write_all_at(&[b[0] ^ 0x55], offset).unwrap();
    let restore = || file.write_all_at(&b, offset).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    restore();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn only_what_was_signed_runs_and_the_trail_shows_what_did() {
    let _g = serial();
    let env = Env::new();
    env.compile_and_build(APP, "hello");
    let compiled = env
        .tmp
        .path()
        .join("hello-compiled")
        .to_string_lossy()
        .into_owned();
    let op = Operator { env, compiled };
    let env = &op.env;

    env.ok(&["key", "generate", "alice"]);
    env.ok(&["key", "generate", "mallory"]);
    let alice = env.ok(&["key", "export", "alice"]);
    op.policy(&format!(
        "require_signed = true\ntrusted_keys = [\"{}\"]\n",
        alice.trim()
    ));

    // Plain `up` is refused when signatures are required.
    let err = refused(env, &["up", &op.compiled], "A_PLAN_REQUIRED");
    assert!(err.contains("mvmctl plan"), "{err}");

    // A bare (unsigned) plan is refused too.
    let bare = op.path("bare.json");
    env.ok(&["plan", &op.compiled, "--out", Operator::s(&bare)]);
    let plan: Value = serde_json::from_slice(&std::fs::read(&bare).unwrap()).unwrap();
    assert_eq!(plan["app_name"], "hello-app");
    for field in [
        "ir_hash",
        "workload_id",
        "created_at",
        "entrypoints",
        "hooks",
        "network",
    ] {
        assert!(plan.get(field).is_some(), "the plan states {field}");
    }
    refused(env, &["up", "--plan", Operator::s(&bare)], "A_UNSIGNED");

    // Signed by alice: verify names her and the image, and up runs it.
    let good = op.signed_plan("good.json", &[]);
    let verify = env.ok(&["verify", Operator::s(&good)]);
    assert!(verify.contains("signed by: alice"), "{verify}");
    assert!(verify.contains("digests: 5 files match"), "{verify}");
    let out = op.up_plan(&good);
    assert!(out.status.success(), "{}", stderr(&out));
    let result = env.ok(&["invoke", "hello-app", "--input", "name=ari"]);
    assert!(result.contains("ari"), "{result}");
    env.ok(&["down", "hello-app"]);

    // Each tampering is refused with its own code.
    let envelope = op.envelope(&good);
    let payload = B64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let mut edited: Value = serde_json::from_slice(&payload).unwrap();
    edited["resources"]["memory_mib"] = 4096.into();
    let mut v = envelope.clone();
    v["payload"] = B64.encode(serde_json::to_vec(&edited).unwrap()).into();
    let p = op.write_envelope("field.json", &v);
    refused(env, &["up", "--plan", Operator::s(&p)], "A_BAD_SIGNATURE");

    let mut v = envelope.clone();
    let mut sig = B64
        .decode(v["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    sig[0] ^= 1;
    v["signatures"][0]["sig"] = B64.encode(sig).into();
    let p = op.write_envelope("sig.json", &v);
    refused(env, &["up", "--plan", Operator::s(&p)], "A_BAD_SIGNATURE");

    let image_dir = env
        .home()
        .join("images")
        .join(plan["image"]["id"].as_str().unwrap());
    let g = Operator::s(&good).to_string();
    with_flipped_byte(&image_dir.join("rootfs.ext4"), 4096 * 10, || {
        let err = refused(env, &["up", "--plan", &g], "A_DIGEST_MISMATCH");
        assert!(err.contains("rootfs.ext4"), "{err}");
        // verify sees it too, and says so with exit status 2.
        let out = env.mvmctl(&["verify", &g]);
        assert_eq!(out.status.code(), Some(2));
    });
    with_flipped_byte(&image_dir.join("image.lock"), 0, || {
        let err = refused(env, &["up", "--plan", &g], "A_DIGEST_MISMATCH");
        assert!(err.contains("image.lock"), "{err}");
    });
    let boot = mvm_runtime::assets::boot_assets(
        &mvm_runtime::assets::cache_dir().unwrap(),
        mvm_runtime::assets::Progress::Hidden,
    )
    .unwrap();
    with_flipped_byte(&boot.kernel, 1024, || {
        let err = refused(env, &["up", "--plan", &g], "A_DIGEST_MISMATCH");
        assert!(err.contains("kernel"), "{err}");
    });

    // Signed by a key the policy does not trust.
    let p = op.path("mallory.json");
    env.ok(&["plan", &op.compiled, "--out", Operator::s(&p)]);
    env.ok(&["sign", Operator::s(&p), "--key", "mallory"]);
    refused(env, &["up", "--plan", Operator::s(&p)], "A_UNTRUSTED_KEY");
    // The key removed from the policy: alice's plan is no longer trusted.
    op.policy("require_signed = true\n");
    refused(env, &["up", "--plan", &g], "A_UNTRUSTED_KEY");
    op.policy(&format!(
        "require_signed = true\ntrusted_keys = [\"{}\"]\n",
        alice.trim()
    ));

    // Validity windows.
    let p = op.signed_plan("later.json", &["--not-before", "2099-01-01T00:00:00Z"]);
    refused(env, &["up", "--plan", Operator::s(&p)], "A_NOT_YET_VALID");
    let p = op.signed_plan("brief.json", &["--valid-for", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    refused(env, &["up", "--plan", Operator::s(&p)], "A_EXPIRED");

    // Single use: admitted once, then refused.
    let once = op.signed_plan("once.json", &["--single-use"]);
    let out = op.up_plan(&once);
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["down", "hello-app"]);
    refused(env, &["up", "--plan", Operator::s(&once)], "A_NONCE_REUSED");

    // Limits apply to every launch, plain ones included.
    op.policy("[limits]\nmax_memory_mib = 64\n");
    let err = refused(env, &["up", &op.compiled], "A_LIMIT_MEMORY");
    assert!(err.contains("policy.toml"), "{err}");

    // The trail: one record per event, in order, and it verifies.
    let records = op.audit();
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    let count = |e: &str| events.iter().filter(|x| **x == e).count();
    assert!(count("build") >= 1, "{events:?}");
    assert_eq!(count("up"), 2, "{events:?}");
    assert_eq!(count("down"), 2, "{events:?}");
    assert_eq!(count("invoke"), 1, "{events:?}");
    assert_eq!(count("plan_verified"), 2, "{events:?}");
    let refusals: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "admission" && r["decision"] == "refused")
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        refusals,
        [
            "A_PLAN_REQUIRED",
            "A_UNSIGNED",
            "A_BAD_SIGNATURE",
            "A_BAD_SIGNATURE",
            "A_DIGEST_MISMATCH",
            "A_DIGEST_MISMATCH",
            "A_DIGEST_MISMATCH",
            "A_UNTRUSTED_KEY",
            "A_UNTRUSTED_KEY",
            "A_NOT_YET_VALID",
            "A_EXPIRED",
            "A_NONCE_REUSED",
            "A_LIMIT_MEMORY",
        ]
    );
    let invoke = records.iter().find(|r| r["event"] == "invoke").unwrap();
    assert_eq!(invoke["instance"], "hello-app");
    assert!(
        !serde_json::to_string(invoke).unwrap().contains("ari"),
        "no payloads in the trail"
    );
    let out = env.ok(&["audit", "verify"]);
    assert!(out.contains("ok"), "{out}");

    // An edited copy of the trail fails verification, naming the line.
    let copy = op.path("audit-copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["log.jsonl", "head.json"] {
        std::fs::copy(env.home().join("audit").join(f), copy.join(f)).unwrap();
    }
    let log = std::fs::read_to_string(copy.join("log.jsonl")).unwrap();
    let edited = log.replacen("\"event\":\"invoke\"", "\"event\":\"exec\"", 1);
    assert_ne!(log, edited);
    let line = log
        .lines()
        .position(|l| l.contains("\"event\":\"invoke\""))
        .unwrap()
        + 1;
    std::fs::write(copy.join("log.jsonl"), edited).unwrap();
    let out = env.mvmctl(&["audit", "verify", "--dir", Operator::s(&copy)]);
    assert_eq!(out.status.code(), Some(2));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        text.contains(&format!("line {}", line + 1)) || text.contains(&format!("line {line}")),
        "names the edited record's line ({line}) or the next: {text}"
    );
}
