//! Instance lifecycle figures under real QEMU: cold `up` split into phases,
//! warm invoke and `exec true` round trips, and QEMU's memory beyond the
//! guest's. Few samples: each cold start is a full VM boot.
//!
//! `cargo bench -p mvm-runtime --bench lifecycle`. Like the VM tests, this
//! binary is also the supervisor (`<bench> __supervise NAME`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mvm_runtime::InstanceName;
use mvm_runtime::assets::{self, Progress};
use mvm_runtime::call::{self, InvokeOutcome};
use mvm_runtime::state::ImageRef;
use mvm_runtime::up::{SupervisorCommand, UpOptions, up_image};
use serde_json::json;

const COLD_SAMPLES: usize = 3;
const INVOKE_SAMPLES: usize = 200;
const EXEC_SAMPLES: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__supervise") {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
        let name = InstanceName::parse(&args[2]).expect("instance name");
        std::process::exit(mvm_runtime::supervisor::run(
            &mvm_runtime::home::mvm_home(),
            &name,
        ));
    }
    // `cargo test --benches` runs this with no `--bench`; booting VMs there
    // is the VM tests' job.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let _lock = support::vm_lock(&support::rootfs::cache_dir());
    let home = tempfile::tempdir().expect("temporary MVM_HOME");
    let result = std::panic::catch_unwind(|| measure(home.path()));
    let _ = mvm_runtime::down::down_all(home.path(), Duration::from_secs(5));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn measure(home: &Path) {
    let boot = assets::boot_assets(&support::rootfs::cache_dir(), Progress::Hidden)
        .expect("guest boot assets");
    let launch_dir = home.join("launch");
    std::fs::create_dir_all(&launch_dir).unwrap();
    let image = ImageRef {
        id: "bench-image".into(),
        name: "rt-test".into(),
        rootfs: support::fixture::rootfs(),
        launch_json: support::fixture::write_launch(&launch_dir, json!({})),
    };
    let opts = UpOptions {
        name: Some(InstanceName::parse("bench").unwrap()),
        ready_timeout: Duration::from_secs(180),
        supervisor: SupervisorCommand {
            program: std::env::current_exe().unwrap(),
            args: vec!["__supervise".into()],
        },
    };
    let name = InstanceName::parse("bench").unwrap();

    println!(
        "cold up to ready ({COLD_SAMPLES} samples, accel {}):",
        boot.accel
    );
    for i in 0..COLD_SAMPLES {
        let started = Instant::now();
        let up = up_image(home, image.clone(), &boot, &opts).expect("up");
        let wall = started.elapsed();
        let t = up.timings;
        println!(
            "  #{i}: wall {} ms | QEMU start → hello {} ms | configure {} ms | before_start {} ms | after_start {} ms | ready {} ms",
            wall.as_millis(),
            t.boot_ms,
            t.configure_ms,
            t.before_start_ms,
            t.after_start_ms,
            t.total_ms
        );
        if i + 1 < COLD_SAMPLES {
            mvm_runtime::down::down(home, &name, Duration::from_secs(10)).expect("down");
        }
    }

    // The first invoke starts the Python runner; the warm figure excludes it.
    let first = Instant::now();
    let out = call::invoke(home, &name, Some("noop".into()), Default::default()).expect("invoke");
    assert_eq!(out, InvokeOutcome::Value(serde_json::Value::Null));
    println!(
        "first invoke (runner start): {} ms",
        first.elapsed().as_millis()
    );

    let invokes = sample(INVOKE_SAMPLES, || {
        call::invoke(home, &name, Some("noop".into()), Default::default()).expect("invoke");
    });
    report("warm invoke of a trivial Python function", &invokes);

    let execs = sample(EXEC_SAMPLES, || {
        let status = call::exec(
            home,
            &name,
            vec!["true".into()],
            None,
            &mut std::io::sink(),
            &mut std::io::sink(),
        )
        .expect("exec");
        assert_eq!(status.exit_code(), 0);
    });
    report("`exec true` round trip", &execs);

    let rows = mvm_runtime::ps::ps(home).expect("ps");
    let row = rows
        .iter()
        .find(|r| r.name == "bench")
        .expect("bench instance listed");
    let (rss, mem) = (row.rss_mb.unwrap_or(0), row.memory_mb.unwrap_or(0) as u64);
    println!(
        "QEMU RSS {rss} MiB for a {mem} MiB guest: {} MiB beyond guest memory",
        rss as i64 - mem as i64
    );
}

fn sample(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(what: &str, sorted: &[Duration]) {
    let pct =
        |p: f64| sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what} ({} samples): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*sorted.last().unwrap())
    );
}
