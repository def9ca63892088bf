//! Egress through the gate vs direct, measured in the same run (these
//! machines are noisy: compare the ratios). A real microVM reaches a local
//! server through a grant the operator pins to 127.0.0.1; the host reaches
//! the same server directly; both run probe.py:
//!
//! - connection set-up (connect, one request byte, one reply byte), p50/p99;
//! - a 128 MiB download, as throughput;
//! - 50 connections from one guest open at the same time.
//!
//! `cargo bench -p mvmctl --bench egress` (needs what the VM tests need).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

const NAME: &str = "egress-bench";
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
    // `cargo bench` passes --bench; nothing to filter here.
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("probe.py"), include_str!("probe.py")).unwrap();
    std::fs::write(
        src.join("app.py"),
        format!(
            "import mvm\n\n@mvm.app(\n    name=\"{NAME}\",\n    source=mvm.local_path(\".\"),\n    image=mvm.python_image(python=\"3.13\"),\n    resources=mvm.resources(cpu_cores=2, memory_mb=512),\n    network=mvm.network(mode=\"bridge\", egress=mvm.egress([mvm.host_port(\"{HOST}\", {PORT})]), dns=mvm.dns_none()),\n)\ndef main() -> str:\n    return \"\"\n"
        ),
    )
    .unwrap();
    serve();
    let out = tmp.path().join("compiled");
    let (out_s, app) = (out.to_str().unwrap(), src.join("app.py"));
    mvmctl(&home, &["compile", app.to_str().unwrap(), "--out", out_s]);
    mvmctl(&home, &["build", out_s]);
    let grant = format!("{HOST}:{PORT}");
    let pin = format!("{HOST}=127.0.0.1");
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
    let (port, samples) = (PORT.to_string(), SAMPLES.to_string());
    let guest = probe(&mvmctl(
        &home,
        &[
            "exec",
            NAME,
            "--",
            "python3",
            "/app/probe.py",
            HOST,
            &port,
            &samples,
        ],
    ));
    let direct = Command::new("python3")
        .args([
            src.join("probe.py").to_str().unwrap(),
            "127.0.0.1",
            &port,
            &samples,
        ])
        .output()
        .expect("python3 on the host");
    let direct = probe(&String::from_utf8_lossy(&direct.stdout));
    mvmctl(&home, &["down", NAME]);
    let _ = TcpStream::connect(("127.0.0.1", PORT));

    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("egress through the gate (guest, TCG) vs direct (host), same server, same run:");
    println!(
        "  connection set-up p50: {:.2} ms vs {:.2} ms ({:.1}x)",
        f(&guest, "p50_ms"),
        f(&direct, "p50_ms"),
        f(&guest, "p50_ms") / f(&direct, "p50_ms")
    );
    println!(
        "  connection set-up p99: {:.2} ms vs {:.2} ms ({:.1}x)",
        f(&guest, "p99_ms"),
        f(&direct, "p99_ms"),
        f(&guest, "p99_ms") / f(&direct, "p99_ms")
    );
    println!(
        "  {} MiB download: {:.0} MiB/s vs {:.0} MiB/s ({:.2}x of direct; target >= 0.5x)",
        BULK >> 20,
        f(&guest, "bulk_mib_s"),
        f(&direct, "bulk_mib_s"),
        f(&guest, "bulk_mib_s") / f(&direct, "bulk_mib_s")
    );
    println!(
        "  {CONCURRENT} concurrent connections from one guest: {} of {CONCURRENT} open together in {:.2} s (direct: {} in {:.2} s)",
        guest["concurrent_ok"],
        f(&guest, "concurrent_s"),
        direct["concurrent_ok"],
        f(&direct, "concurrent_s")
    );
    assert_eq!(
        guest["bulk_bytes"].as_u64(),
        Some(BULK as u64),
        "the whole download arrived"
    );
}
