//! Every performance target of the runtime next to its floor, measured in
//! one run and printed as one table (these machines are noisy: the ratio
//! to the floor is the figure that travels, absolute times drift).
//!
//! | row | floor |
//! |---|---|
//! | `mvmctl invoke` (whole process), invoke in-process and through the local API (keep-alive HTTP) | a `Ping` through the supervisor to the agent and back |
//! | `mvmctl exec -- true` (whole process and in-process) | the guest spawning `/bin/true` itself, in a loop inside the guest |
//! | QEMU memory beyond the guest's | — (target 48 MiB), with how many idle instances this host holds |
//! | `up` of 1 and of 16 instances at once | — |
//! | `mvmctl compile` of 1,000 files, to a directory and to a `.tgz` | `tar -cf` of the same tree |
//! | cold boot, QEMU start → agent hello | the same kernel booting a busybox `/init` |
//! | `mvmctl --version` | spawning `/bin/true` |
//!
//! `cargo bench -p mvmctl --bench perf` (needs what the VM tests need).
//! `MVM_BENCH_AT_ONCE` sets how many instances the density rows start
//! (default 16).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mvm_runtime::InstanceName;

#[path = "../common/project_1000.rs"]
mod project_1000;
use serde_json::Value;

const NAME: &str = "hello-app";
const CALLS: usize = 300;
const EXECS: usize = 100;
const COMPILES: usize = 15;
const BOOTS: usize = 3;
const SPAWNS_IN_GUEST: usize = 200;

fn main() {
    // `cargo test --benches` runs this with no `--bench`: booting VMs is
    // the VM tests' job there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = Bench {
        home: tmp.path().join("home"),
    };
    let mut table = Table::default();

    process_start(&b, &mut table);
    compile(&b, tmp.path(), &mut table);

    let out = tmp.path().join("compiled");
    let app = repo_root().join("examples/python/hello-app/app.py");
    b.run(&[
        "compile",
        app.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (build, _) = b.json(&["build", out.to_str().unwrap(), "--json"]);
    let rootfs = PathBuf::from(build["rootfs_path"].as_str().expect("rootfs_path"));

    cold_boot(&b, &rootfs, tmp.path(), &mut table);
    // Saves the template the later `up`s restore.
    b.run(&["up", NAME]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        invoke(&b, &mut table);
        exec(&b, &mut table);
        memory(&b, &mut table);
        density(&b, &mut table);
    }));
    let _ = mvm_runtime::down::down_all(&b.home, Duration::from_secs(10));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    table.print();
}

struct Bench {
    home: PathBuf,
}

impl Bench {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
        c.args(args).env("MVM_HOME", &self.home);
        c
    }

    fn run(&self, args: &[&str]) -> (String, Duration) {
        let t = Instant::now();
        let out = self.command(args).output().expect("run mvmctl");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "mvmctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        (String::from_utf8(out.stdout).unwrap(), took)
    }

    /// Only the wall time; output discarded.
    fn time(&self, args: &[&str]) -> f64 {
        let t = Instant::now();
        let status = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let took = ms(t.elapsed());
        assert!(status.success(), "mvmctl {}", args.join(" "));
        took
    }

    fn json(&self, args: &[&str]) -> (Value, Duration) {
        let (out, took) = self.run(args);
        (serde_json::from_str(&out).expect("JSON"), took)
    }

    fn name(&self) -> InstanceName {
        InstanceName::parse(NAME).unwrap()
    }
}

/// Latencies in ms.
#[derive(Clone)]
struct Sample(Vec<f64>);

impl Sample {
    fn of(n: usize, mut f: impl FnMut() -> f64) -> Sample {
        let mut v: Vec<f64> = (0..n).map(|_| f()).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Sample(v)
    }

    fn timed(n: usize, mut f: impl FnMut()) -> Sample {
        Sample::of(n, || {
            let t = Instant::now();
            f();
            ms(t.elapsed())
        })
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }

    fn p50(&self) -> f64 {
        self.pct(0.5)
    }

    fn p99(&self) -> f64 {
        self.pct(0.99)
    }
}

struct Row {
    what: String,
    value: String,
    floor: String,
    ratio: String,
    target: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// A latency row: p50/p99, its floor's p50 and the ratio of p50s.
    fn latency(&mut self, what: &str, s: &Sample, floor: Option<(&str, f64)>, target: &str) {
        let (floor_text, ratio) = match floor {
            Some((name, f)) => (
                format!("{name} {}", fmt_ms(f)),
                format!("{:.2}x", s.p50() / f),
            ),
            None => ("-".into(), "-".into()),
        };
        self.rows.push(Row {
            what: what.into(),
            value: format!("p50 {} p99 {}", fmt_ms(s.p50()), fmt_ms(s.p99())),
            floor: floor_text,
            ratio,
            target: target.into(),
        });
    }

    fn other(&mut self, what: &str, value: String, floor: &str, ratio: &str, target: &str) {
        self.rows.push(Row {
            what: what.into(),
            value,
            floor: floor.into(),
            ratio: ratio.into(),
            target: target.into(),
        });
    }

    fn print(&self) {
        let head = Row {
            what: "measure".into(),
            value: "value".into(),
            floor: "floor (same run)".into(),
            ratio: "ratio".into(),
            target: "target".into(),
        };
        let w = |f: fn(&Row) -> &String| {
            self.rows
                .iter()
                .chain([&head])
                .map(|r| f(r).chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [
            w(|r| &r.what),
            w(|r| &r.value),
            w(|r| &r.floor),
            w(|r| &r.ratio),
        ];
        println!();
        for r in [&head].into_iter().chain(&self.rows) {
            println!(
                "{:<a$}  {:<b$}  {:<c$}  {:>d$}  {}",
                r.what,
                r.value,
                r.floor,
                r.ratio,
                r.target,
                a = widths[0],
                b = widths[1],
                c = widths[2],
                d = widths[3]
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spawn_ms(argv: &[&str]) -> f64 {
    let t = Instant::now();
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{argv:?}");
    ms(t.elapsed())
}

fn process_start(b: &Bench, table: &mut Table) {
    let floor = Sample::of(CALLS, || spawn_ms(&["/bin/true"]));
    let ours = Sample::of(CALLS, || b.time(&["--version"]));
    table.latency(
        "mvmctl --version (process start)",
        &ours,
        Some(("/bin/true", floor.p50())),
        "",
    );
}

fn compile(b: &Bench, tmp: &Path, table: &mut Table) {
    let src = tmp.join("compile-src");
    std::fs::create_dir_all(&src).unwrap();
    project_1000::project(&src);
    let ir = src.join("workload.json");
    let tar_out = tmp.join("floor.tar");
    let tar = Sample::of(COMPILES, || {
        let t = Instant::now();
        let status = Command::new("tar")
            .arg("-cf")
            .arg(&tar_out)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        ms(t.elapsed())
    });
    let floor = Some(("tar -cf", tar.p50()));
    for (what, out) in [
        ("compile 1,000 files → directory", tmp.join("compiled-1000")),
        ("compile 1,000 files → .tgz", tmp.join("compiled-1000.tgz")),
    ] {
        let s = Sample::of(COMPILES, || {
            b.time(&[
                "compile",
                ir.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
        });
        table.latency(what, &s, floor, "≤ 200 ms or ≤ 1.5x tar");
    }
}

/// Cold boot: the bare kernel with a busybox `/init` (the floor) against
/// `mvmctl up --cold` (QEMU start → agent hello, and the whole process).
fn cold_boot(b: &Bench, rootfs: &Path, tmp: &Path, table: &mut Table) {
    use mvm_vmm::{Backend, GuestBoot, GuestNetwork, GuestVm, MachineConfig};
    const MARKER: &str = "mvm-bench-floor-init";
    let cache = mvm_runtime::assets::cache_dir().unwrap();
    let assets = mvm_guest::ensure_assets(&cache, mvm_guest::Progress::Hidden).unwrap();
    let vmm = mvm_vmm::backend(Backend::default());
    let floor = Sample::of(BOOTS, || {
        let dir = tempfile::tempdir_in(tmp).unwrap();
        let initrd = dir.path().join("busybox.cpio");
        mvm_guest::write_busybox_initramfs(&initrd, Path::new("/bin/busybox"), MARKER).unwrap();
        let scratch = dir.path().join("scratch.img");
        mvm_vmm::create_scratch_disk(&scratch, 64).unwrap();
        let spec = GuestVm {
            boot: GuestBoot {
                kernel: assets.kernel.clone(),
                initrd,
                cmdline: assets.cmdline_base.clone(),
            },
            machine: MachineConfig {
                vcpus: 1,
                memory_mib: 256,
            },
            root_disk: rootfs.to_path_buf(),
            scratch_disk: scratch,
            agent_socket: dir.path().join("agent.sock"),
            console_log: dir.path().join("console.log"),
            vmm_log: dir.path().join("qemu.log"),
            broker_socket: None,
            control_socket: None,
            network: GuestNetwork::None,
            accel: mvm_vmm::probe().chosen,
        }
        .into_spec()
        .unwrap();
        let t = Instant::now();
        let mut vm = vmm.launch(&spec).unwrap();
        loop {
            let console = std::fs::read_to_string(&spec.console_log).unwrap_or_default();
            if console.contains(MARKER) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "no marker; console:\n{console}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = ms(t.elapsed());
        let _ = vm.kill();
        took
    });
    let (mut hello, mut whole) = (Vec::new(), Vec::new());
    for _ in 0..BOOTS {
        let (up, took) = b.json(&["up", NAME, "--cold", "--json"]);
        hello.push(up["timings"]["boot_ms"].as_f64().expect("boot_ms"));
        whole.push(ms(took));
        b.run(&["down", NAME]);
    }
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Sample(v)
    };
    let f = Some(("busybox /init", floor.p50()));
    table.latency(
        "cold boot: QEMU start → agent hello",
        &sorted(hello),
        f,
        "≤ 1.1x floor",
    );
    table.latency("cold `mvmctl up --cold` (whole)", &sorted(whole), f, "");
}

fn invoke(b: &Bench, table: &mut Table) {
    let name = b.name();
    let home = b.home.clone();
    let args = || {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), "ari".into());
        m
    };
    // Warm: the runner has run the function once.
    mvm_runtime::call::invoke(&home, &name, None, args()).unwrap();
    let ping = Sample::timed(CALLS, || mvm_runtime::call::ping(&home, &name).unwrap());
    let floor = Some(("ping", ping.p50()));
    table.latency(
        "ping (supervisor → agent → back)",
        &ping,
        None,
        "echo floor ~0.5 ms",
    );
    let cli = Sample::of(CALLS, || b.time(&["invoke", NAME, "--input", "name=ari"]));
    table.latency(
        "`mvmctl invoke` (whole process)",
        &cli,
        floor,
        "p50 ≤ 2.5 ms, p99 ≤ 4 ms",
    );
    let in_process = Sample::timed(CALLS, || {
        mvm_runtime::call::invoke(&home, &name, None, args()).unwrap();
    });
    table.latency("invoke in-process (call::invoke)", &in_process, floor, "");

    let api = Api::start(&b.home);
    let mut conn = api.connect();
    let path = format!("/v1/sandboxes/{NAME}/invoke");
    let body = r#"{"args":{"name":"ari"}}"#;
    assert!(conn.post(&path, body).contains("hello ari"));
    let http = Sample::timed(CALLS, || {
        conn.post(&path, body);
    });
    table.latency(
        "invoke through the local API (keep-alive)",
        &http,
        floor,
        "p50 ≤ 1 ms, ≤ 2x floor",
    );
}

struct Api {
    child: Child,
    socket: PathBuf,
}

impl Api {
    fn start(home: &Path) -> Api {
        let socket = home.join("api.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .arg("serve")
            .env("MVM_HOME", home)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "mvmctl serve");
            std::thread::sleep(Duration::from_millis(20));
        }
        Api { child, socket }
    }

    fn connect(&self) -> Http {
        let s = UnixStream::connect(&self.socket).unwrap();
        Http {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client on one kept-alive connection.
struct Http {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Http {
    fn post(&mut self, path: &str, body: &str) -> String {
        write!(
            self.writer,
            "POST {path} HTTP/1.1\r\nHost: mvm\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    }
}

fn exec(b: &Bench, table: &mut Table) {
    let name = b.name();
    let home = b.home.clone();
    // The guest's own cost of starting the binary: a loop inside it.
    let script = format!(
        "s=$(date +%s%N); i=0; while [ $i -lt {SPAWNS_IN_GUEST} ]; do /bin/true; i=$((i+1)); done; e=$(date +%s%N); echo $(( (e - s) / {SPAWNS_IN_GUEST} ))"
    );
    let per_spawn = Sample::of(5, || {
        let (out, _) = b.run(&["exec", NAME, "--", "sh", "-c", &script]);
        out.trim().parse::<f64>().unwrap() / 1e6
    });
    let floor = Some(("guest spawn", per_spawn.p50()));
    let cli = Sample::of(EXECS, || b.time(&["exec", NAME, "--", "true"]));
    table.latency(
        "`mvmctl exec -- true` (whole process)",
        &cli,
        floor,
        "≤ 10 ms or ≤ 1.5x floor",
    );
    let in_process = Sample::timed(EXECS, || {
        let status = mvm_runtime::call::exec(
            &home,
            &name,
            vec!["true".into()],
            None,
            &mut std::io::sink(),
            &mut std::io::sink(),
        )
        .unwrap();
        assert_eq!(status.exit_code(), 0);
    });
    table.latency("exec true in-process (call::exec)", &in_process, floor, "");
}

/// QEMU's memory from /proc/PID/smaps, split into the guest's RAM, TCG's
/// translation cache, file pages it shares with every other instance
/// (the kernel image it keeps mapped) and the rest.
struct Memory {
    guest_ram: u64,
    tb_cache: u64,
    shared_file: u64,
    other_private: u64,
}

fn qemu_memory(pid: u32, guest_mib: u64) -> Memory {
    #[derive(Default)]
    struct Region {
        size: u64,
        exec: bool,
        file: bool,
        rss: u64,
        dirty: u64,
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut regions: Vec<Region> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let kib = || {
            fields
                .get(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match fields.first() {
            Some(&"Rss:") => regions.last_mut().unwrap().rss = kib(),
            Some(&"Private_Dirty:") => regions.last_mut().unwrap().dirty = kib(),
            Some(range) if range.contains('-') && !range.ends_with(':') => {
                let (a, b) = range.split_once('-').unwrap();
                let (a, b) = (
                    u64::from_str_radix(a, 16).unwrap(),
                    u64::from_str_radix(b, 16).unwrap(),
                );
                regions.push(Region {
                    size: b - a,
                    exec: fields[1].contains('x'),
                    file: fields.len() > 5,
                    ..Region::default()
                });
            }
            _ => {}
        }
    }
    let mut m = Memory {
        guest_ram: 0,
        tb_cache: 0,
        shared_file: 0,
        other_private: 0,
    };
    for r in &regions {
        if r.file {
            // Clean file pages are the page cache's, shared by every
            // instance mapping the same file.
            m.shared_file += r.rss - r.dirty;
            m.other_private += r.dirty;
        } else if r.size == guest_mib << 20 {
            m.guest_ram += r.rss;
        } else if r.exec {
            m.tb_cache += r.rss;
        } else {
            m.other_private += r.rss;
        }
    }
    Memory {
        guest_ram: m.guest_ram / 1024,
        tb_cache: m.tb_cache / 1024,
        shared_file: m.shared_file / 1024,
        other_private: m.other_private / 1024,
    }
}

fn qemu_pid(home: &Path, name: &str) -> u32 {
    let state: Value = serde_json::from_slice(
        &std::fs::read(home.join("instances").join(name).join("state.json")).unwrap(),
    )
    .unwrap();
    state["qemu"]["pid"].as_u64().expect("qemu pid") as u32
}

fn memory(b: &Bench, table: &mut Table) {
    let m = qemu_memory(qemu_pid(&b.home, NAME), 256);
    let beyond = m.tb_cache + m.other_private;
    table.other(
        "QEMU memory beyond the guest's (256 MiB guest)",
        format!(
            "{beyond} MiB private (TCG cache {} + other {}); {} MiB kernel image shared by all; guest RAM touched {} MiB",
            m.tb_cache, m.other_private, m.shared_file, m.guest_ram
        ),
        "-",
        "-",
        "≤ 48 MiB",
    );
}

fn mem_available_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// `up` of one instance, then of `MVM_BENCH_AT_ONCE` at once (all from the
/// template); what the idle ones cost the host, and so how many it holds.
fn density(b: &Bench, table: &mut Table) {
    let at_once: usize = std::env::var("MVM_BENCH_AT_ONCE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16);
    b.run(&["down", NAME]);
    let one = Sample::of(3, || {
        let took = b.time(&["up", NAME, "--name", "solo"]);
        b.run(&["down", "solo"]);
        took
    });
    table.latency("up from the template, 1 instance", &one, None, "");
    let before = mem_available_mib();
    let started = Instant::now();
    let children: Vec<(Child, Instant)> = (0..at_once)
        .map(|i| {
            let child = b
                .command(&["up", NAME, "--name", &format!("d{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, Instant::now())
        })
        .collect();
    let mut each = Vec::new();
    for (mut child, t) in children {
        assert!(child.wait().unwrap().success(), "a concurrent up failed");
        each.push(ms(t.elapsed()));
    }
    let all = ms(started.elapsed());
    each.sort_by(|a, b| a.partial_cmp(b).unwrap());
    table.latency(
        &format!("up from the template, {at_once} at once (each)"),
        &Sample(each),
        Some(("1 instance", one.p50())),
        "",
    );
    table.other(
        &format!("up of {at_once} at once, until all are ready"),
        fmt_ms(all),
        "-",
        "-",
        "",
    );
    // Idle for a moment, so start-up work has settled.
    std::thread::sleep(Duration::from_secs(3));
    let per = (before.saturating_sub(mem_available_mib())) as f64 / at_once as f64;
    let total = mem_total_mib();
    table.other(
        "host memory per idle 256 MiB instance",
        format!(
            "{per:.0} MiB (MemAvailable drop / {at_once}); this {:.1} GiB host holds ~{}",
            total as f64 / 1024.0,
            (before as f64 / per.max(1.0)) as u64
        ),
        "-",
        "-",
        "",
    );
    for i in 0..at_once {
        b.run(&["down", &format!("d{i}")]);
    }
}

fn mem_total_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}
