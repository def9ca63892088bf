//! Snapshots against their floor, side by side in one run (these machines
//! are noisy: compare ratios):
//!
//! - **floor**: bare QEMU (mvm-vmm, the same flags and guest assets, the
//!   image's root disk, no lifecycle) restoring a saved agent guest, to
//!   its first answer (a `hello`);
//! - **restored `up`**: `mvmctl up` of hello-app from its template, whole
//!   process wall time (restore, clock/entropy, configure, hooks, probe);
//! - **cold `up`**: `mvmctl up --cold` of the same image;
//! - the first and second `invoke` after a restore;
//! - `pause` + `resume` of the 256 MiB guest;
//! - snapshot size vs the guest's touched memory, QEMU RSS per instance
//!   with several running at once, and what this host would hold.
//!
//! `cargo bench -p mvmctl --bench snapshots` (needs what the VM tests need).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const NAME: &str = "hello-app";
const RESTORES: usize = 5;
const COLD: usize = 2;
const PAUSES: usize = 3;
const AT_ONCE: usize = 4;

struct Bench {
    home: PathBuf,
    key: PathBuf,
}

impl Bench {
    fn run(&self, args: &[&str]) -> (String, Duration) {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .args(args)
            .env("MVM_HOME", &self.home)
            .env("MVM_SECRETS_KEY_FILE", &self.key)
            .output()
            .expect("run mvmctl");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "mvmctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        (String::from_utf8(out.stdout).unwrap(), took)
    }

    fn json(&self, args: &[&str]) -> (Value, Duration) {
        let (out, took) = self.run(args);
        (serde_json::from_str(&out).expect("JSON"), took)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let b = Bench {
        home: tmp.path().join("home"),
        key: tmp.path().join("secrets.key"),
    };
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

    // Cold ups (the first also saves the template).
    let mut cold = Vec::new();
    let mut capture_ms = 0;
    for i in 0..COLD + 1 {
        let args: &[&str] = if i == 0 {
            &["up", NAME, "--json"]
        } else {
            &["up", NAME, "--json", "--cold"]
        };
        let (up, took) = b.json(args);
        if i == 0 {
            capture_ms = up["timings"]["capture_ms"].as_u64().unwrap();
        } else {
            cold.push(ms(took));
        }
        b.run(&["down", NAME]);
    }

    // Restored ups, each followed by its first and second invoke.
    let (mut restored, mut first, mut second) = (Vec::new(), Vec::new(), Vec::new());
    let mut rss_one = 0;
    for _ in 0..RESTORES {
        let (up, took) = b.json(&["up", NAME, "--json"]);
        assert_eq!(up["started_by"], "template", "{up}");
        restored.push(ms(took));
        first.push(ms(b.run(&["invoke", NAME, "--input", "name=ari"]).1));
        second.push(ms(b.run(&["invoke", NAME, "--input", "name=bo"]).1));
        let (ps, _) = b.json(&["ps", "--json"]);
        rss_one = ps[0]["rss_mb"].as_u64().unwrap_or(0);
        b.run(&["down", NAME]);
    }

    // Pause + resume of a running 256 MiB guest.
    b.run(&["up", NAME]);
    let (touched, _) = b.run(&[
        "exec",
        NAME,
        "--",
        "sh",
        "-c",
        "awk '/MemTotal/{t=$2} /MemFree/{f=$2} END{print int((t-f)/1024)}' /proc/meminfo",
    ]);
    let touched_mib: u64 = touched.trim().parse().unwrap();
    let (mut pause, mut resume, mut paused_bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..PAUSES {
        let (p, took) = b.json(&["pause", NAME, "--json"]);
        paused_bytes = p["bytes"].as_u64().unwrap();
        pause.push(ms(took));
        resume.push(ms(b.run(&["resume", NAME]).1));
        b.run(&["invoke", NAME, "--input", "name=ari"]);
    }
    b.run(&["down", NAME]);

    // Several instances at once, each restored from the template.
    let mut rss = Vec::new();
    for i in 0..AT_ONCE {
        b.run(&["up", NAME, "--name", &format!("many-{i}")]);
    }
    let (ps, _) = b.json(&["ps", "--json"]);
    for row in ps.as_array().unwrap() {
        rss.push(row["rss_mb"].as_u64().unwrap_or(0));
    }
    b.run(&["down", "--all"]);

    let template = template_size(&b.home);
    let floor = floor(&rootfs, tmp.path());

    let available = mem_available_mib();
    let per = rss.iter().copied().max().unwrap_or(rss_one).max(1);
    println!("snapshots (256 MiB guest, TCG on this host; medians):");
    println!(
        "  restore floor (bare QEMU + agent answer): {:>7.0} ms",
        median(floor.clone())
    );
    let r = median(restored.clone());
    println!(
        "  restored up (whole mvmctl process):       {:>7.0} ms  = {:.1}x floor",
        r,
        r / median(floor)
    );
    println!(
        "  cold up --cold:                           {:>7.0} ms  = {:.1}x restored",
        median(cold.clone()),
        median(cold) / r
    );
    println!("  first up (boot + template save):          +{capture_ms} ms for the template");
    println!(
        "  first invoke after restore:               {:>7.0} ms (second {:.0} ms)",
        median(first),
        median(second)
    );
    let (p, s) = (median(pause), median(resume));
    println!(
        "  pause + resume:                           {:>7.0} ms ({p:.0} + {s:.0})",
        p + s
    );
    println!(
        "  template snapshot {} MiB, paused state {} MiB, guest touched memory {} MiB",
        template >> 20,
        paused_bytes >> 20,
        touched_mib
    );
    println!(
        "  QEMU RSS per instance {rss:?} MiB with {AT_ONCE} running; {available} MiB available here \
         => about {} such instances at once",
        available / per
    );
}

/// Bytes of the first template's `vm.state`.
fn template_size(home: &Path) -> u64 {
    for image in std::fs::read_dir(home.join("images")).unwrap().flatten() {
        if let Ok(slots) = std::fs::read_dir(image.path().join("templates")) {
            for slot in slots.flatten() {
                if let Ok(m) = std::fs::metadata(slot.path().join("vm.state")) {
                    return m.len();
                }
            }
        }
    }
    0
}

fn mem_available_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// Bare QEMU: boot the agent guest on the image's root disk, save it once
/// it greets, then restore it `RESTORES` times to its first answer.
fn floor(rootfs: &Path, tmp: &Path) -> Vec<f64> {
    use mvm_vmm::{Backend, GuestBoot, GuestNetwork, GuestVm, MachineConfig, Qmp};
    let cache = mvm_runtime::assets::cache_dir().unwrap();
    let assets = mvm_guest::ensure_assets(&cache, mvm_guest::Progress::Hidden).unwrap();
    let dir = tmp.join("floor");
    std::fs::create_dir_all(&dir).unwrap();
    let scratch = dir.join("scratch.img");
    mvm_vmm::create_scratch_disk(&scratch, 512).unwrap();
    let spec = GuestVm {
        boot: GuestBoot {
            kernel: assets.kernel.clone(),
            initrd: assets.initrd.clone(),
            cmdline: assets.cmdline_base.clone(),
        },
        machine: MachineConfig {
            vcpus: 1,
            memory_mib: 256,
        },
        root_disk: rootfs.to_path_buf(),
        scratch_disk: scratch,
        agent_socket: dir.join("agent.sock"),
        console_log: dir.join("console.log"),
        vmm_log: dir.join("qemu.log"),
        broker_socket: Some(dir.join("broker.sock")),
        control_socket: Some(dir.join("qmp.sock")),
        network: GuestNetwork::None,
        accel: mvm_vmm::probe().chosen,
    }
    .into_spec()
    .unwrap();
    let vmm = mvm_vmm::backend(Backend::default());
    let state = dir.join("vm.state");
    let mut vm = vmm.launch(&spec).unwrap();
    let stream = mvm_vmm::connect_agent(vm.as_mut(), &spec, Duration::from_secs(60)).unwrap();
    let client = mvm_proto::Client::connect(stream, Duration::from_secs(120)).unwrap();
    let mut qmp = Qmp::connect(spec.control_socket.as_ref().unwrap()).unwrap();
    qmp.snapshot(&state, Duration::from_secs(120)).unwrap();
    drop(client);
    qmp.quit().unwrap();
    let _ = vm.wait();
    let mut times = Vec::new();
    for _ in 0..RESTORES {
        let t = Instant::now();
        let mut vm = vmm.restore(&spec, &state).unwrap();
        let stream = mvm_vmm::connect_agent(vm.as_mut(), &spec, Duration::from_secs(60)).unwrap();
        let reader = stream.try_clone().unwrap();
        let client = mvm_proto::Client::attach(reader, stream, Duration::from_secs(60)).unwrap();
        times.push(ms(t.elapsed()));
        drop(client);
        vm.kill().unwrap();
    }
    times
}
