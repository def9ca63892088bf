//! The runtime SDK through the local API, next to its floors in one run
//! (these machines are noisy: compare ratios):
//!
//! - `Sandbox.create(template=...)` → first `commands.run("true")` from the
//!   base template's snapshot, Python and TypeScript, p50/p99, next to
//!   `mvmctl up` restoring the same template (the CLI's own floor);
//! - `commands.run("true")` through the API (Python SDK, one HTTP request
//!   per call) next to `mvmctl exec -- true` (a whole process each);
//! - 100 MB written and read through the SDK next to 100 MB streamed out
//!   of the guest by `mvmctl exec` (the channel's own rate);
//! - API requests per second for a no-op (`GET /v1/health`) from 10
//!   concurrent clients.
//!
//! `cargo bench -p mvmctl --bench api` (needs what the VM tests need).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mvmctl(home: &Path, args: &[&str]) -> (String, Duration) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .args(args)
        .env("MVM_HOME", home)
        .output()
        .expect("mvmctl");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "mvmctl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), took)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn secs(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ms(s: f64) -> String {
    format!("{:.1} ms", s * 1000.0)
}

fn health_rps(socket: &Path, clients: usize, per_client: usize) -> f64 {
    let t = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let socket = socket.to_path_buf();
            std::thread::spawn(move || {
                for _ in 0..per_client {
                    let mut s = UnixStream::connect(&socket).unwrap();
                    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).unwrap();
                    assert!(buf.starts_with(b"HTTP/1.1 200"));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    (clients * per_client) as f64 / t.elapsed().as_secs_f64()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let socket = home.join("api.sock");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .arg("serve")
            .env("MVM_HOME", &home)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    while UnixStream::connect(&socket).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("unix:{}", socket.display());

    let out = Command::new("python3")
        .arg(repo().join("crates/mvmctl/benches/api/bench_sdk.py"))
        .arg("10")
        .env("PYTHONPATH", repo().join("sdk/python/src"))
        .env("MVM_API_URL", &url)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "bench_sdk.py failed");
    let py: Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    let sandbox = py["sandbox"].as_str().unwrap().to_string();

    let ts = Command::new("node")
        .arg(repo().join("crates/mvmctl/benches/api/bench_sdk.mjs"))
        .arg("10")
        .env("MVM_API_URL", &url)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(ts.status.success(), "bench_sdk.mjs failed");
    let ts: Value = serde_json::from_slice(
        ts.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();

    // Floors, in the same run.
    let image = {
        let (list, _) = mvmctl(&home, &["ps"]);
        assert!(list.contains(&sandbox), "{list}");
        let st: Value = serde_json::from_str(
            &std::fs::read_to_string(home.join("instances").join(&sandbox).join("state.json"))
                .unwrap(),
        )
        .unwrap();
        st["image"]["id"].as_str().unwrap().to_string()
    };
    let mut up = Vec::new();
    for i in 0..5 {
        let name = format!("floor-{i}");
        let (_, took) = mvmctl(&home, &["up", &image, "--name", &name]);
        up.push(took.as_secs_f64());
        mvmctl(&home, &["down", &name]);
    }
    let mut exec = Vec::new();
    for _ in 0..30 {
        let (_, took) = mvmctl(&home, &["exec", &sandbox, "--", "true"]);
        exec.push(took.as_secs_f64());
    }
    let t = Instant::now();
    let stream = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .args([
            "exec",
            &sandbox,
            "--",
            "head",
            "-c",
            "104857600",
            "/dev/zero",
        ])
        .env("MVM_HOME", &home)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let stream_s = t.elapsed().as_secs_f64();
    assert_eq!(stream.stdout.len(), 104_857_600);
    let rps = health_rps(&socket, 10, 200);
    mvmctl(&home, &["down", "--all"]);
    drop(server);

    let mut py_create = secs(&py["create_first_run_s"]);
    let mut ts_create = secs(&ts["create_first_run_s"]);
    let mut runs = secs(&py["run_true_s"]);
    let mb = |s: f64| format!("{:.1} MB/s", 100.0 / s);
    println!(
        "first create (image build + template capture): {:.1} s",
        py["first_create_s"].as_f64().unwrap()
    );
    println!("{:<58} {:>12} {:>12}", "measure", "p50", "p99/once");
    println!(
        "{:<58} {:>12} {:>12}",
        "Python create -> first run(\"true\"), template snapshot",
        ms(pct(&mut py_create, 0.5)),
        ms(pct(&mut py_create, 0.99))
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "TypeScript create -> first run(\"true\"), template snapshot",
        ms(pct(&mut ts_create, 0.5)),
        ms(pct(&mut ts_create, 0.99))
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "  floor: mvmctl up of the same template (whole process)",
        ms(pct(&mut up, 0.5)),
        ms(pct(&mut up, 0.99))
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "commands.run(\"true\") through the API (Python)",
        ms(pct(&mut runs, 0.5)),
        ms(pct(&mut runs, 0.99))
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "  floor: mvmctl exec -- true (whole process)",
        ms(pct(&mut exec, 0.5)),
        ms(pct(&mut exec, 0.99))
    );
    println!(
        "{:<58} {:>12}",
        "files.write 100 MB (Python)",
        mb(py["write_100mb_s"].as_f64().unwrap())
    );
    println!(
        "{:<58} {:>12}",
        "files.read 100 MB (Python)",
        mb(py["read_100mb_s"].as_f64().unwrap())
    );
    println!(
        "{:<58} {:>12}",
        "  floor: 100 MB out of the guest by mvmctl exec",
        mb(stream_s)
    );
    println!(
        "{:<58} {:>12}",
        "GET /v1/health, 10 clients, connection per request",
        format!("{rps:.0} req/s")
    );
}
