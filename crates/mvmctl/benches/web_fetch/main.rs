//! `mvm.web_fetch` through the host vs the same request made directly on
//! the host, in the same run (these machines are noisy: compare the
//! ratios). A real microVM calls a local HTTPS server (mvm-broker's test
//! server, its CA given with `--ca-bundle`) through its grant, the host
//! applying a bound secret; the floor is python3 on the host making the
//! same requests over one kept-alive connection. Both run probe.py:
//!
//! - 200 small GETs, p50/p99 round trip;
//! - 200 calls the host refuses at once: the channel's own cost;
//! - one 10 MB response, as throughput.
//!
//! `cargo bench -p mvmctl --bench web_fetch` (needs what the VM tests need).

use std::path::Path;
use std::process::Command;

use mvm_broker::test_server::TestServer;
use serde_json::Value;

const NAME: &str = "fetch-bench";
const SAMPLES: usize = 200;
const BIG: usize = 10_000_000;

fn mvmctl(home: &Path, key: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .args(args)
        .env("MVM_HOME", home)
        .env("MVM_SECRETS_KEY_FILE", key)
        .output()
        .expect("run mvmctl");
    assert!(
        out.status.success(),
        "mvmctl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn probe(v: &str) -> Value {
    serde_json::from_str(v.trim()).unwrap_or_else(|e| panic!("probe printed {v:?}: {e}"))
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, key) = (tmp.path().join("home"), tmp.path().join("secrets.key"));
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("probe.py"), include_str!("probe.py")).unwrap();
    let server = TestServer::start(&["bench.test"]);
    let port = server.port;
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let app = format!(
        "import mvm\n\n@mvm.app(\n    name=\"{NAME}\",\n    source=mvm.local_path(\".\", include=[\"probe.py\"]),\n    image=mvm.python_image(python=\"3.13\"),\n    resources=mvm.resources(cpu_cores=2, memory_mb=512),\n    network=mvm.network(mode=\"bridge\", egress=mvm.egress([mvm.host_port(\"bench.test\", {port})]), dns=mvm.dns_none()),\n    env={{\"KEY\": mvm.secret(\"bench-key\", type=\"bearer\", hosts=[\"bench.test\"])}},\n)\ndef main() -> str:\n    return \"\"\n"
    );
    std::fs::write(src.join("app.py"), app).unwrap();
    let out = tmp.path().join("compiled");
    let (decl, out) = (src.join("app.py"), out.to_str().unwrap().to_string());
    mvmctl(
        &home,
        &key,
        &["compile", decl.to_str().unwrap(), "--out", &out],
    );
    mvmctl(&home, &key, &["build", &out]);
    let value = tmp.path().join("value");
    std::fs::write(&value, "bench-secret-value").unwrap();
    mvmctl(
        &home,
        &key,
        &[
            "secret",
            "set",
            "bench-key",
            "--from-file",
            value.to_str().unwrap(),
        ],
    );
    let grant = format!("bench.test:{port}");
    mvmctl(
        &home,
        &key,
        &[
            "up",
            NAME,
            "--timeout-ready",
            "180",
            "--egress-pin",
            "bench.test=127.0.0.1",
            "--allow-private-egress",
            &grant,
            "--ca-bundle",
            ca.to_str().unwrap(),
            // The default (50 calls a second) would answer most of the
            // 200 back-to-back calls Busy.
            "--egress-max-rate",
            "100000",
        ],
    );
    let (samples, big) = (SAMPLES.to_string(), BIG.to_string());
    let base = format!("https://bench.test:{port}");
    let guest = probe(&mvmctl(
        &home,
        &key,
        &[
            "exec",
            NAME,
            "--",
            "python3",
            "/app/probe.py",
            &base,
            &samples,
            &big,
        ],
    ));
    mvmctl(&home, &key, &["down", NAME]);
    let direct = Command::new("python3")
        .args([
            src.join("probe.py").to_str().unwrap(),
            "--direct",
            "127.0.0.1",
            &port.to_string(),
            ca.to_str().unwrap(),
            &samples,
            &big,
        ])
        .output()
        .expect("python3 on the host");
    let direct = probe(&String::from_utf8_lossy(&direct.stdout));
    // Every call carried the bound secret.
    let applied = server
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer bench-secret-value"))
        .count();
    assert!(
        applied > SAMPLES,
        "only {applied} requests carried the secret"
    );

    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("web_fetch, same server, same run (TCG guest):");
    println!(
        "  columns: guest via mvm.web_fetch (host applies the secret) | floor: python3 on the host, direct"
    );
    for (what, k) in [("round trip p50", "p50_ms"), ("round trip p99", "p99_ms")] {
        println!(
            "  {what}: {:.2} ms | {:.2} ms  (web_fetch/direct {:.1}x)",
            f(&guest, k),
            f(&direct, k),
            f(&guest, k) / f(&direct, k)
        );
    }
    println!(
        "  a refused call (the broker channel, checks, log and audit; no request): p50 {:.2} ms, p99 {:.2} ms",
        f(&guest["refused"], "p50_ms"),
        f(&guest["refused"], "p99_ms")
    );
    println!(
        "  10 MB response: {:.1} | {:.1} MiB/s  (web_fetch/direct {:.2}x)",
        f(&guest, "big_mib_s"),
        f(&direct, "big_mib_s"),
        f(&guest, "big_mib_s") / f(&direct, "big_mib_s")
    );
}
