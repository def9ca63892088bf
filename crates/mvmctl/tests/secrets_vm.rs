//! Secrets end to end, from inside real microVMs: the guest holds only
//! opaque tokens; `mvm.web_fetch` has the host apply the real value for a
//! destination that is granted and bound, and hand back the answer with
//! the value replaced by the token; nothing the host writes or relays ever
//! holds a value.
//!
//! The destinations are a local HTTPS echo server (mvm-broker's
//! `test-server`) on the host's loopback, reachable because each `up`
//! gives the operator's permission for exactly those grants, pins the test
//! names to 127.0.0.1 and trusts the server's throwaway CA.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::path::{Path, PathBuf};

use mvm_broker::test_server::TestServer;
use serde_json::Value;
use vm_env::{Env, repo_root, serial};

const API_VALUE: &str = "sk-live-API-0123456789abcdef";
const AUTO_VALUE: &str = "sk-live-AUTO-fedcba9876543210";
const SEARCH_VALUE: &str = "search-key-5555aaaa";

/// The guest function: one mediated call, its outcome as JSON.
const APP_FUNCTIONS: &str = r#"
import os

import mvm


def fetch(url: str, header: str = "", var: str = "", prefix: str = "") -> dict:
    headers = {header: prefix + os.environ[var]} if header else {}
    try:
        r = mvm.web_fetch(url, headers=headers, timeout=20)
    except mvm.WebError as e:
        return {"error": e.code, "message": str(e)}
    return {"status": r.status, "headers": r.headers, "body": r.text}


def search(q: str) -> list:
    return mvm.web_search(q, max_results=2)
"#;

fn declaration(port: u16) -> String {
    format!(
        r#"import mvm

@mvm.app(
    name="fetcher",
    source=mvm.local_path("."),
    image=mvm.python_image(python="3.13"),
    network=mvm.network(
        mode="bridge",
        egress=mvm.egress([mvm.host_port("api.test", {port}), mvm.host_port("other.test", {port})]),
        dns=mvm.dns_none(),
    ),
    env={{
        "API_KEY": mvm.secret("api-key", hosts=["api.test"]),
        "AUTO_KEY": mvm.secret("auto-key", type="bearer", hosts=["other.test"]),
    }},
    entrypoints=[
        mvm.entrypoint_function(module="fns", function="fetch", primary=True),
        mvm.entrypoint_function(module="fns", function="search"),
    ],
)
def fetch(url: str) -> dict:
    ...
"#
    )
}

fn build(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let src = env.tmp.path().join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    for (f, body) in files {
        std::fs::write(src.join(f), body).unwrap();
    }
    let out = env.tmp.path().join(format!("{name}-compiled"));
    env.ok(&[
        "compile",
        src.join(files[0].0).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    env.ok(&["build", out.to_str().unwrap()]);
    out
}

fn invoke(env: &Env, name: &str, entrypoint: &str, inputs: &[String]) -> Value {
    let mut args = vec!["invoke", name, "--entrypoint", entrypoint];
    for i in inputs {
        args.extend(["--input", i.as_str()]);
    }
    serde_json::from_str(&env.ok(&args)).expect("invoke prints JSON")
}

/// Every file under `dir`, read as bytes (the host's own record of the instance).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(p);
            } else if meta.is_file() && meta.len() < 64 * 1024 * 1024 {
                // Disk images are searched too: a value must not be in one.
                if let Ok(bytes) = std::fs::read(&p) {
                    out.push((p, bytes));
                }
            }
        }
    }
    out
}

fn assert_no_value(what: &str, bytes: &[u8]) {
    for v in [API_VALUE, AUTO_VALUE, SEARCH_VALUE] {
        assert!(
            !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
            "{what} holds the secret value {v}"
        );
    }
}

#[test]
fn web_fetch_applies_secrets_on_the_host_and_the_guest_sees_only_tokens() {
    let _g = serial();
    let env = Env::new();
    let server = TestServer::start(&["api.test", "other.test"]);
    let port = server.port;
    let ca = env.tmp.path().join("test-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    build(
        &env,
        "fetcher",
        &[("app.py", &declaration(port)), ("fns.py", APP_FUNCTIONS)],
    );
    let grants = [format!("api.test:{port}"), format!("other.test:{port}")];
    let search_url = format!("https://127.0.0.1:{port}/search");
    let up_args: Vec<String> = [
        "up",
        "fetcher",
        "--timeout-ready",
        "120",
        "--egress-pin",
        "api.test=127.0.0.1",
        "--egress-pin",
        "other.test=127.0.0.1",
        "--allow-private-egress",
        &grants[0],
        "--allow-private-egress",
        &grants[1],
        "--ca-bundle",
        ca.to_str().unwrap(),
        "--web-search",
        &search_url,
        "--web-search-key",
        "search-key",
    ]
    .map(String::from)
    .to_vec();
    let up_args: Vec<&str> = up_args.iter().map(String::as_str).collect();

    // Admission: nothing starts while a referenced secret is missing, and
    // the refusal names every one.
    env.secret_set("api-key", API_VALUE);
    let refused = env.mvmctl(&up_args);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "up without auto-key started");
    for missing in ["auto-key", "search-key"] {
        assert!(
            err.contains(&format!("mvmctl secret set {missing}")),
            "{err}"
        );
    }
    assert!(!err.contains("secret set api-key"), "{err}");
    assert!(!env.home().join("instances/fetcher").exists());
    env.secret_set("auto-key", AUTO_VALUE);
    env.secret_set("search-key", SEARCH_VALUE);
    env.ok(&up_args);

    let token = env
        .ok(&[
            "exec",
            "fetcher",
            "--",
            "sh",
            "-c",
            "printf %s \"$API_KEY\"",
        ])
        .to_string();
    assert!(token.starts_with("mvm-secret-ref:api-key:"), "{token}");
    let auto_token = env.ok(&[
        "exec",
        "fetcher",
        "--",
        "sh",
        "-c",
        "printf %s \"$AUTO_KEY\"",
    ]);

    // 1. The guest puts its token in a header; the server gets the value;
    //    the echo of it comes back as the token.
    let got = invoke(
        &env,
        "fetcher",
        "fetch",
        &[
            format!("url=https://api.test:{port}/echo"),
            "header=authorization".into(),
            "var=API_KEY".into(),
            "prefix=Bearer ".into(),
        ],
    );
    assert_eq!(got["status"], 200, "{got}");
    let seen = server.requests();
    let last = seen.last().expect("the server saw the request");
    assert_eq!(
        last.header("authorization"),
        Some(&*format!("Bearer {API_VALUE}"))
    );
    assert_eq!(last.header("host"), Some(&*format!("api.test:{port}")));
    let body = got["body"].as_str().unwrap();
    assert!(body.contains(&token), "the echo holds the token: {body}");
    let text = got.to_string();
    assert_no_value("the answer the guest got", text.as_bytes());

    // 2. A bearer binding is applied by the host without the guest naming it.
    let got = invoke(
        &env,
        "fetcher",
        "fetch",
        &[format!("url=https://other.test:{port}/echo")],
    );
    assert_eq!(got["status"], 200, "{got}");
    let last = server.requests().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(&*format!("Bearer {AUTO_VALUE}"))
    );
    assert!(
        got["body"].as_str().unwrap().contains(auto_token.trim()),
        "{got}"
    );
    assert_no_value("the auto-applied answer", got.to_string().as_bytes());

    // 3. Refusals, as structured errors in the guest, and nothing sent.
    let before = server.requests().len();
    for (inputs, code) in [
        // Granted, but api-key is bound to api.test only.
        (
            vec![
                format!("url=https://other.test:{port}/echo"),
                "header=x-api-key".into(),
                "var=API_KEY".into(),
            ],
            "SecretNotAllowed",
        ),
        // Not granted at all.
        (
            vec![format!("url=https://denied.test:{port}/echo")],
            "EgressDenied",
        ),
        // Granted host and port, but not https.
        (
            vec![format!("url=http://api.test:{port}/echo")],
            "EgressDenied",
        ),
    ] {
        let got = invoke(&env, "fetcher", "fetch", &inputs);
        assert_eq!(got["error"], code, "{inputs:?}: {got}");
    }
    assert_eq!(
        server.requests().len(),
        before,
        "a refused call reached the server"
    );

    // 4. web_search through the operator's provider, with its own key.
    let hits = invoke(&env, "fetcher", "search", &["q=microvm".into()]);
    assert_eq!(hits.as_array().map(Vec::len), Some(2), "{hits}");
    assert_eq!(hits[0]["title"], "Result 1 for microvm", "{hits}");
    assert!(hits[0]["snippet"].is_string() && hits[0]["url"].is_string());
    let last = server.requests().pop().unwrap();
    assert!(last.path.starts_with("/search?"), "{}", last.path);
    assert_eq!(
        last.header("authorization"),
        Some(&*format!("Bearer {SEARCH_VALUE}"))
    );

    // 5. The guest only ever saw tokens: env, /proc, files. The values go
    //    in base64 and only counts come back, so the host's redaction of
    //    relayed output cannot hide a find.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let script = [API_VALUE, AUTO_VALUE, SEARCH_VALUE]
        .map(|v| {
            format!(
                "v=$(echo {} | base64 -d); printf '%s ' $(env | grep -cF \"$v\") $(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF \"$v\") $(grep -rlF \"$v\" /etc /app /run /tmp /root /var 2>/dev/null | wc -l);",
                b64.encode(v)
            )
        })
        .join(" ");
    let counts = env.ok(&["exec", "fetcher", "--", "sh", "-c", &script]);
    assert_eq!(
        counts.trim(),
        "0 0 0 0 0 0 0 0 0",
        "the guest found a value"
    );
    let envs = env.ok(&["exec", "fetcher", "--", "env"]);
    assert!(envs.contains(&format!("API_KEY={token}")), "{envs}");

    // 6. An exec that prints a value the guest could not know (the
    //    operator typed it) comes back redacted; the token is left alone.
    let echoed = env.ok(&["exec", "fetcher", "--", "echo", API_VALUE]);
    assert_eq!(echoed.trim(), "[secret:api-key]");
    let echoed = env.ok(&["exec", "fetcher", "--", "sh", "-c", "echo $API_KEY"]);
    assert_eq!(echoed.trim(), token);

    // 7. Each release is audited: instance, secret name, destination,
    //    method, status, bytes; never the value.
    let audit = env.ok(&["audit", "--json"]);
    let releases: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["event"] == "mediated")
        .collect();
    let api = releases
        .iter()
        .find(|r| r["secrets"] == serde_json::json!(["api-key"]))
        .unwrap_or_else(|| panic!("no api-key release in {releases:?}"));
    assert_eq!(api["destination"], format!("api.test:{port}"));
    assert_eq!(api["method"], "GET");
    assert_eq!(api["status"], 200);
    assert!(api["bytes_received"].as_u64().unwrap() > 0);
    assert!(
        releases.iter().any(|r| r["decision"] == "refused"),
        "{releases:?}"
    );
    let search = releases
        .iter()
        .find(|r| r["kind"] == "web_search")
        .unwrap_or_else(|| panic!("no search record in {releases:?}"));
    assert_eq!(search["secrets"], serde_json::json!(["search-key"]));

    // 8. Nothing the host wrote or relays holds a value: logs, the console
    //    log, state, the egress log, the audit trail, the disks.
    assert_no_value("mvmctl logs", env.ok(&["logs", "fetcher"]).as_bytes());
    let egress = env.ok(&["logs", "fetcher", "--egress"]);
    assert!(egress.contains("web_fetch"), "{egress}");
    assert_no_value("mvmctl logs --egress", egress.as_bytes());
    assert_no_value("ps --json", env.ok(&["ps", "--json"]).as_bytes());
    assert_no_value("the audit trail", audit.as_bytes());
    let mut searched = 0;
    for (path, bytes) in files_under(&env.home()) {
        if path.starts_with(env.home().join("secrets")) {
            continue; // the store itself: sealed values
        }
        assert_no_value(&path.display().to_string(), &bytes);
        searched += 1;
    }
    assert!(searched > 5, "only {searched} files under the home");
    env.ok(&["down", "fetcher"]);
}

/// The seed agent tool (OpenAI key, `allow_https`) as written, with a test
/// destination in place of api.openai.com and a body that calls it.
#[test]
fn the_seed_agent_tool_authenticates_through_the_host() {
    let _g = serial();
    let env = Env::new();
    // allow_https grants port 443: the server must listen there.
    let server = TestServer::start_on(443, &["api.openai.test"]);
    let ca = env.tmp.path().join("test-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let seed = repo_root().join("examples/seeds/decorator-agent-tool/tool.py");
    let text = std::fs::read_to_string(seed)
        .unwrap()
        .replace("api.openai.com", "api.openai.test")
        // Python 3.12 is not buildable here (seed_examples.rs).
        .replace("\"python312\"", "\"python313\"")
        .replace(
            "def run(prompt: str) -> str:\n    ...",
            "def run(prompt: str) -> str:\n    import os\n    r = mvm.web_fetch(\"https://api.openai.test/echo\", method=\"POST\", headers={\"Authorization\": \"Bearer \" + os.environ[\"OPENAI_API_KEY\"]}, json={\"input\": prompt})\n    return str(r.status)\n",
        );
    assert!(
        text.contains("mvm.web_fetch"),
        "the seed's body changed: {text}"
    );
    build(&env, "agent-tool", &[("tool.py", &text)]);
    env.secret_set("openai-api-key", "sk-openai-test-value-42");
    env.ok(&[
        "up",
        "agent-tool",
        "--timeout-ready",
        "120",
        "--egress-pin",
        "api.openai.test=127.0.0.1",
        "--allow-private-egress",
        "api.openai.test:443",
        "--ca-bundle",
        ca.to_str().unwrap(),
    ]);
    let out = env.ok(&["invoke", "agent-tool", "--input", "prompt=hi"]);
    assert_eq!(out.trim(), r#""200""#);
    let last = server.requests().pop().expect("the server saw the call");
    assert_eq!(last.method, "POST");
    assert_eq!(
        last.header("authorization"),
        Some("Bearer sk-openai-test-value-42")
    );
    assert_eq!(last.body, br#"{"input": "hi"}"#);
    env.ok(&["down", "agent-tool"]);
}
