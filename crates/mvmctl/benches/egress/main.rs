//! Egress through the gate vs direct, measured in the same run (these
//! machines are noisy: compare the ratios). A real microVM reaches a local
//! server through a grant the operator pins to 127.0.0.1; the floor is the
//! same guest image in `host` mode reaching the same server straight
//! through QEMU's user network (10.0.2.2, no gate); the host's own
//! loopback is printed too. All run probe.py:
//!
//! - connection set-up (connect, one request byte, one reply byte), p50/p99;
//! - a 128 MiB download, as throughput;
//! - 50 connections from one guest open at the same time.
//!
//! `cargo bench -p mvmctl --bench egress` (needs what the VM tests need).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

const NAME: &str = "egress-bench";
const FLOOR: &str = "egress-floor";
const HOST: &str = "bench.mvm.test";
const PORT: u16 = 18089;
const SAMPLES: usize = 200;
const BULK: usize = 128 << 20;
const CONCURRENT: usize = 50;

fn mvmctl(home: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .args(args)
        .env("MVM_HOME", home)
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

/// PING: one byte back. BULK: BULK bytes. HOLD: one byte once CONCURRENT
/// HOLDs are open together (or `n` after 30 s).
fn serve() {
    let listener = TcpListener::bind(("127.0.0.1", PORT)).expect("bench port 18089 is free");
    let holding = Arc::new((Mutex::new(0usize), Condvar::new()));
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let holding = holding.clone();
            std::thread::spawn(move || {
                let mut word = [0u8; 4];
                if s.read_exact(&mut word).is_err() {
                    return;
                }
                match &word {
                    b"PING" => drop(s.write_all(b"x")),
                    b"BULK" => {
                        let chunk = vec![7u8; 1 << 20];
                        for _ in 0..BULK / chunk.len() {
                            if s.write_all(&chunk).is_err() {
                                return;
                            }
                        }
                    }
                    b"HOLD" => {
                        let (count, cv) = &*holding;
                        let mut n = count.lock().unwrap();
                        *n += 1;
                        cv.notify_all();
                        let (n, timeout) = cv
                            .wait_timeout_while(n, Duration::from_secs(30), |n| *n < CONCURRENT)
                            .unwrap();
                        drop(n);
                        let _ = s.write_all(if timeout.timed_out() { b"n" } else { b"x" });
                    }
                    _ => {}
                }
            });
        }
    });
}

fn probe(v: &str) -> Value {
    serde_json::from_str(v.trim()).unwrap_or_else(|e| panic!("probe printed {v:?}: {e}"))
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("probe.py"), include_str!("probe.py")).unwrap();
    let app = |name: &str, network: &str, tier: &str| {
        format!(
            "import mvm\n\n@mvm.app(\n    name=\"{name}\",\n    source=mvm.local_path(\".\", include=[\"probe.py\"]),\n    image=mvm.python_image(python=\"3.13\"),\n    resources=mvm.resources(cpu_cores=2, memory_mb=512),\n    network={network},\n    threat_tier=\"{tier}\",\n)\ndef main() -> str:\n    return \"\"\n"
        )
    };
    let gated = app(
        NAME,
        &format!(
            "mvm.network(mode=\"bridge\", egress=mvm.egress([mvm.host_port(\"{HOST}\", {PORT})]), dns=mvm.dns_none())"
        ),
        "untrusted",
    );
    let floor_app = app(
        FLOOR,
        "mvm.network(mode=\"host\", dns=mvm.dns_system())",
        "trusted",
    );
    serve();
    for (file, text) in [("gated.py", &gated), ("floor.py", &floor_app)] {
        std::fs::write(src.join(file), text).unwrap();
        let out = tmp.path().join(file.trim_end_matches(".py"));
        let decl = src.join(file);
        let (decl, out) = (decl.to_str().unwrap(), out.to_str().unwrap());
        mvmctl(&home, &["compile", decl, "--out", out]);
        mvmctl(&home, &["build", out]);
    }
    // `host` mode is for trusted workloads and a policy that allows it.
    let policy = home.join("policy.toml");
    std::fs::write(
        &policy,
        "[limits]\nnetwork_modes = [\"none\", \"bridge\", \"host\"]\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o600)).unwrap();

    let grant = format!("{HOST}:{PORT}");
    let pin = format!("{HOST}=127.0.0.1");
    let (port, samples) = (PORT.to_string(), SAMPLES.to_string());
    let probe_in = |name: &str, host: &str| {
        probe(&mvmctl(
            &home,
            &[
                "exec",
                name,
                "--",
                "python3",
                "/app/probe.py",
                host,
                &port,
                &samples,
            ],
        ))
    };
    mvmctl(
        &home,
        &[
            "up",
            NAME,
            "--timeout-ready",
            "180",
            "--egress-pin",
            &pin,
            "--allow-private-egress",
            &grant,
            "--egress-max-rate",
            "100000",
        ],
    );
    let gate = probe_in(NAME, HOST);
    mvmctl(&home, &["down", NAME]);
    mvmctl(&home, &["up", FLOOR, "--timeout-ready", "180"]);
    let floor = probe_in(FLOOR, "10.0.2.2");
    mvmctl(&home, &["down", FLOOR]);
    let host = Command::new("python3")
        .args([
            src.join("probe.py").to_str().unwrap(),
            "127.0.0.1",
            &port,
            &samples,
        ])
        .output()
        .expect("python3 on the host");
    let host = probe(&String::from_utf8_lossy(&host.stdout));

    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("egress, same server, same run (TCG guest):");
    println!("  columns: gate (bridge guest) | floor: no gate (host-mode guest) | host loopback");
    for (what, k) in [
        ("connection set-up p50", "p50_ms"),
        ("connection set-up p99", "p99_ms"),
    ] {
        println!(
            "  {what}: {:.2} ms | {:.2} ms | {:.2} ms  (gate/floor {:.1}x)",
            f(&gate, k),
            f(&floor, k),
            f(&host, k),
            f(&gate, k) / f(&floor, k)
        );
    }
    println!(
        "  {} MiB download: {:.0} | {:.0} | {:.0} MiB/s  (gate/floor {:.2}x; target >= 0.5x)",
        BULK >> 20,
        f(&gate, "bulk_mib_s"),
        f(&floor, "bulk_mib_s"),
        f(&host, "bulk_mib_s"),
        f(&gate, "bulk_mib_s") / f(&floor, "bulk_mib_s")
    );
    println!(
        "  {CONCURRENT} concurrent connections from one guest, all open at once: {} in {:.2} s | {} in {:.2} s | {} in {:.2} s",
        gate["concurrent_ok"],
        f(&gate, "concurrent_s"),
        floor["concurrent_ok"],
        f(&floor, "concurrent_s"),
        host["concurrent_ok"],
        f(&host, "concurrent_s")
    );
    assert_eq!(
        gate["bulk_bytes"].as_u64(),
        Some(BULK as u64),
        "the whole download arrived"
    );
    assert_eq!(gate["concurrent_ok"].as_u64(), Some(CONCURRENT as u64));
}
