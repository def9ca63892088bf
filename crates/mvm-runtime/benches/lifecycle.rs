//! Instance lifecycle figures under real QEMU: cold `up` split into phases,
//! warm invoke and `exec true` round trips, QEMU's memory beyond the
//! guest's, and what the audit trail costs an invoke. Few samples: each
//! cold start is a full VM boot.
//!
//! `cargo bench -p mvm-runtime --bench lifecycle`. Like the VM tests, this
//! binary is also the supervisor (`<bench> __supervise NAME`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mvm_runtime::InstanceName;
use mvm_runtime::admission::AdmissionRequest;
use mvm_runtime::assets::{self, Progress};
use mvm_runtime::call::{self, InvokeOutcome};
use mvm_runtime::state::ImageRef;
use mvm_runtime::up::{SupervisorCommand, UpOptions, up_image};
use serde_json::json;

const COLD_SAMPLES: usize = 3;
const INVOKE_SAMPLES: usize = 200;
const EXEC_SAMPLES: usize = 100;
/// Sequential invokes per instance in the audit on/off comparison.
const AUDIT_INVOKES: usize = 200;

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
        lock: None,
        launch_json: support::fixture::write_launch(&launch_dir, json!({})),
    };
    let opts = UpOptions {
        name: Some(InstanceName::parse("bench").unwrap()),
        ready_timeout: Duration::from_secs(180),
        supervisor: SupervisorCommand {
            program: std::env::current_exe().unwrap(),
            args: vec!["__supervise".into()],
        },
        admission: None,
        network: Default::default(),
        broker: Default::default(),
        // These measure and test the boot path; templates have their own.
        start: mvm_runtime::up::StartChoice::Cold,
        lease: None,
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

    let pings = sample(INVOKE_SAMPLES, || {
        call::ping(home, &name).expect("ping");
    });
    report("ping (supervisor → agent → back)", &pings);
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

    audit_cost(home, &boot, &image, &opts, &name);
}

/// Invoke throughput with the audit trail off and on: the same image up
/// twice, `bench` (admission `None`: no audit) and `bench-audit` (the
/// default policy: every invoke appended, fdatasync'd and the head
/// re-signed before the client hears back). Both run at once.
fn audit_cost(
    home: &Path,
    boot: &mvm_runtime::up::BootAssets,
    image: &ImageRef,
    plain: &UpOptions,
    plain_name: &InstanceName,
) {
    let audited_name = InstanceName::parse("bench-audit").unwrap();
    let audited = UpOptions {
        name: Some(audited_name.clone()),
        admission: Some(AdmissionRequest::from_home(home).expect("the default policy")),
        ..plain.clone()
    };
    assert!(
        audited.admission.as_ref().is_some_and(|a| a.policy.audit),
        "the default policy audits"
    );
    let up = up_image(home, image.clone(), boot, &audited).expect("audited up");
    println!(
        "audited up (admission + up record): ready {} ms",
        up.timings.total_ms
    );
    // Starts the audited instance's Python runner; `bench` has one already.
    call::invoke(home, &audited_name, Some("noop".into()), Default::default()).expect("invoke");

    let invoke = |name: &InstanceName| {
        let t = Instant::now();
        let out =
            call::invoke(home, name, Some("noop".into()), Default::default()).expect("invoke");
        let took = t.elapsed();
        assert_eq!(out, InvokeOutcome::Value(serde_json::Value::Null));
        took
    };
    // Alternating, then in blocks (all of one, then all of the other): if
    // the two orders disagree, the machine drifted or the instances
    // disturb each other, and the figures say so.
    let mut alternating = (Vec::new(), Vec::new());
    for _ in 0..AUDIT_INVOKES {
        alternating.0.push(invoke(plain_name));
        alternating.1.push(invoke(&audited_name));
    }
    let blocks = (
        (0..AUDIT_INVOKES)
            .map(|_| invoke(plain_name))
            .collect::<Vec<_>>(),
        (0..AUDIT_INVOKES)
            .map(|_| invoke(&audited_name))
            .collect::<Vec<_>>(),
    );

    // The comparison means something only if exactly one side audited.
    let records = mvm_audit::read(&mvm_runtime::audit::audit_dir(home)).expect("audit trail");
    let invokes_of = |n: &InstanceName| {
        records
            .iter()
            .filter(|r| r.instance.as_deref() == Some(n.as_str()))
            .filter(|r| matches!(r.typed(), Some(mvm_audit::Event::Invoke { .. })))
            .count()
    };
    assert_eq!(
        invokes_of(&audited_name),
        2 * AUDIT_INVOKES + 1,
        "every audited invoke recorded"
    );
    assert_eq!(
        invokes_of(plain_name),
        0,
        "the unaudited instance records nothing"
    );

    compare("alternating", alternating);
    compare("in blocks", blocks);

    // What one record costs by itself (flock, append, fdatasync, signed
    // head staged and renamed), in a home of its own on the same disk: the
    // floor of what auditing can add to an invoke.
    let probe = home.join("append-probe");
    std::fs::create_dir(&probe).unwrap();
    let recorder = mvm_runtime::audit::Recorder::open(&probe).expect("audit trail");
    let event = mvm_audit::Event::Invoke {
        entrypoint: "noop".into(),
        ok: true,
        duration_ms: 1,
    };
    let appends = sample(AUDIT_INVOKES, || {
        recorder.record(Some("probe"), &event).expect("append");
    });
    report("  one audit append alone (Recorder::record)", &appends);
}

/// Prints the off and on series of one order and their ratios.
fn compare(order: &str, (mut off, mut on): (Vec<Duration>, Vec<Duration>)) {
    let rate = |t: &[Duration]| t.len() as f64 / t.iter().sum::<Duration>().as_secs_f64();
    let (rate_off, rate_on) = (rate(&off), rate(&on));
    off.sort();
    on.sort();
    println!(
        "invoke with the audit trail off vs on ({AUDIT_INVOKES} sequential invokes each, {order}):"
    );
    let off_p = report("  audit off (admission None)", &off);
    println!("    {rate_off:.1} invokes/s");
    let on_p = report("  audit on (default policy)", &on);
    println!("    {rate_on:.1} invokes/s");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  on/off: throughput {:.3}x, p50 latency {:.3}x ({:+.2} ms), p99 latency {:.3}x ({:+.2} ms)",
        rate_on / rate_off,
        ms(on_p.0) / ms(off_p.0),
        ms(on_p.0) - ms(off_p.0),
        ms(on_p.1) / ms(off_p.1),
        ms(on_p.1) - ms(off_p.1),
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

/// Prints p50/p99/max of `sorted` and returns (p50, p99).
fn report(what: &str, sorted: &[Duration]) -> (Duration, Duration) {
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
    (pct(0.50), pct(0.99))
}
