//! Snapshots end to end, on real microVMs: `up` restores the image's
//! template snapshot and still runs the lifecycle; `pause`/`resume` keep
//! files and processes; forks of a tagged snapshot are independent and
//! keep their imported modules; tampered, foreign and half-written
//! snapshots are refused.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use vm_env::{Env, serial};

const APP: &str = r#"import os
import time

import mvm

# Module state: a fork answers from the copy it inherited, a fresh import
# would reset it.
IMPORTED_AT = time.time()
CALLS = []


@mvm.app(
    name="snapapp",
    source=mvm.local_path("."),
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    env={"GREETING": mvm.literal("hi")},
    before_start="echo before_start >> /var/tmp/hooks.log",
    after_start="echo after_start >> /var/tmp/hooks.log",
    entrypoints=[
        mvm.entrypoint_function(module="app", function="greet", primary=True),
        mvm.entrypoint_function(module="app", function="state"),
    ],
)
def greet(name: str) -> str:
    return f"{os.environ['GREETING']} {name}"


def state() -> dict:
    CALLS.append(1)
    return {"imported_at": IMPORTED_AT, "calls": len(CALLS)}
"#;

fn build(env: &Env, app: &str, name: &str) {
    let src = env.tmp.path().join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.py"), app.replace("snapapp", name)).unwrap();
    let out = env.tmp.path().join(format!("{name}-compiled"));
    env.ok(&[
        "compile",
        src.join("app.py").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    env.ok(&["build", out.to_str().unwrap()]);
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn up(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["up", "--json"];
    all.extend_from_slice(args);
    json(&env.ok(&all))
}

fn exec(env: &Env, name: &str, script: &str) -> String {
    env.ok(&["exec", name, "--", "sh", "-c", script])
}

fn state_json(env: &Env, name: &str) -> Value {
    let path = env.home().join("instances").join(name).join("state.json");
    json(&std::fs::read_to_string(path).unwrap())
}

/// The template directories of every image in the store.
fn templates(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for image in std::fs::read_dir(env.home().join("images"))
        .unwrap()
        .flatten()
    {
        if let Ok(slots) = std::fs::read_dir(image.path().join("templates")) {
            out.extend(
                slots
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')),
            );
        }
    }
    out.sort();
    out
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
}

fn pid_alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn up_restores_the_template_and_runs_the_lifecycle_as_a_boot_does() {
    let _g = serial();
    let env = Env::new();
    build(&env, APP, "snapapp");

    // First up: boots, and leaves the template behind.
    let first = up(&env, &["snapapp"]);
    assert_eq!(first["started_by"], "boot", "{first}");
    assert!(
        first["timings"]["capture_ms"].as_u64().unwrap() > 0,
        "{first}"
    );
    assert_eq!(templates(&env).len(), 1);
    let cold_answer = env.ok(&["invoke", "snapapp", "--input", "name=ari"]);
    assert_eq!(
        exec(&env, "snapapp", "cat /var/tmp/hooks.log"),
        "before_start\nafter_start\n"
    );
    env.ok(&["down", "snapapp"]);

    // Second up: restored, and the lifecycle ran in this instance, once,
    // in order (the template was taken before before_start).
    let second = up(&env, &["snapapp"]);
    assert_eq!(second["started_by"], "template", "{second}");
    assert_eq!(second["timings"]["capture_ms"], 0, "{second}");
    assert_eq!(
        env.ok(&["invoke", "snapapp", "--input", "name=ari"]),
        cold_answer
    );
    assert_eq!(
        exec(&env, "snapapp", "cat /var/tmp/hooks.log"),
        "before_start\nafter_start\n"
    );
    // The user's module was first imported by this invoke, after the
    // restore: the template held no user code.
    let s = json(&env.ok(&["invoke", "snapapp", "--entrypoint", "state"]));
    assert_eq!(s["calls"], 1, "{s}");
    let ps = json(&env.ok(&["ps", "--json"]));
    assert_eq!(ps[0]["status"], "running", "{ps}");
    env.ok(&["down", "snapapp"]);

    // --cold boots and leaves the template alone.
    let cold = up(&env, &["snapapp", "--cold"]);
    assert_eq!(cold["started_by"], "boot", "{cold}");
    assert_eq!(cold["timings"]["capture_ms"], 0, "{cold}");
    env.ok(&["down", "snapapp"]);

    // A tampered byte in the saved memory: refused, booted instead, and a
    // good template saved in its place.
    let template = templates(&env).pop().unwrap();
    flip_byte(&template.join("vm.state"), 4096 * 100);
    let after_tamper = up(&env, &["snapapp"]);
    let by = after_tamper["started_by"].as_str().unwrap();
    assert!(
        by.starts_with("boot (template unusable") && by.contains("vm.state"),
        "{after_tamper}"
    );
    assert!(after_tamper["timings"]["capture_ms"].as_u64().unwrap() > 0);
    assert_eq!(
        env.ok(&["invoke", "snapapp", "--input", "name=bo"]),
        "\"hi bo\"\n"
    );
    env.ok(&["down", "snapapp"]);

    // Another image's template in this image's slot: sealed by this host,
    // but bound to the other image, so it is not restored.
    build(&env, APP, "otherapp");
    up(&env, &["otherapp"]);
    env.ok(&["down", "otherapp"]);
    let all = templates(&env);
    assert_eq!(all.len(), 2, "{all:?}");
    let snap_slot = all
        .iter()
        .find(|p| p.starts_with(template.parent().unwrap()))
        .unwrap()
        .clone();
    let other = all.iter().find(|p| **p != snap_slot).unwrap().clone();
    std::fs::remove_dir_all(&snap_slot).unwrap();
    copy_dir(&other, &snap_slot);
    let foreign = up(&env, &["snapapp"]);
    let by = foreign["started_by"].as_str().unwrap();
    assert!(
        by.starts_with("boot (template unusable") && by.contains("image"),
        "{foreign}"
    );
    env.ok(&["down", "snapapp"]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn pause_saves_the_guest_and_resume_brings_it_back_running() {
    let _g = serial();
    let env = Env::new();
    build(&env, APP, "pauser");
    up(&env, &["pauser"]);
    exec(
        &env,
        "pauser",
        // The exec's process group is killed when it ends: the loop
        // leaves it (setsid) before the exec returns.
        "echo kept > /root/file; \
         setsid sh -c 'while :; do echo tick >> /root/ticks; sleep 0.2; done' >/dev/null 2>&1 < /dev/null & \
         echo $! > /root/loop.pid; \
         sleep 0.5",
    );
    std::thread::sleep(Duration::from_millis(600));
    let qemu_pid = state_json(&env, "pauser")["qemu"]["pid"].as_i64().unwrap();

    let paused = json(&env.ok(&["pause", "pauser", "--json"]));
    assert!(paused["bytes"].as_u64().unwrap() > 0, "{paused}");
    let ps = json(&env.ok(&["ps", "--json"]));
    assert_eq!(ps[0]["status"], "paused", "{ps}");
    assert!(ps[0]["rss_mb"].is_null(), "{ps}");
    // Nothing of it runs: no QEMU, no supervisor.
    let st = state_json(&env, "pauser");
    assert!(st["qemu"].is_null() && st["supervisor"].is_null(), "{st}");
    assert!(
        !pid_alive(qemu_pid),
        "QEMU {qemu_pid} still runs while paused"
    );
    // A paused instance takes no requests.
    let out = env.mvmctl(&["invoke", "pauser", "--input", "name=x"]);
    assert!(!out.status.success());

    // The record on disk is not what resumes: the sealed one is. An edit
    // pointing the disk at another file, or changing the machine, is
    // ignored.
    let victim = env.tmp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let record = env.home().join("instances/pauser/state.json");
    let mut edited = state_json(&env, "pauser");
    edited["persist"]["vm"]["scratch"] = Value::from(victim.to_str().unwrap());
    edited["persist"]["vm"]["memory_mb"] = Value::from(512);
    std::fs::write(&record, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();

    let resumed = up_like(&env, &["resume", "pauser", "--json"]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let ps = json(&env.ok(&["ps", "--json"]));
    assert_eq!(ps[0]["memory_mb"], 256, "{ps}");
    assert_eq!(resumed["started_by"], "resume", "{resumed}");
    assert_eq!(exec(&env, "pauser", "cat /root/file"), "kept\n");
    let ticks = |env: &Env| {
        exec(env, "pauser", "wc -l < /root/ticks")
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = ticks(&env);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ticks(&env) > before, "the background loop stopped");
    exec(&env, "pauser", "kill -0 $(cat /root/loop.pid)");
    // The hooks did not run again: the guest went on from where it was.
    assert_eq!(
        exec(&env, "pauser", "cat /var/tmp/hooks.log"),
        "before_start\nafter_start\n"
    );
    assert_eq!(
        env.ok(&["invoke", "pauser", "--input", "name=x"]),
        "\"hi x\"\n"
    );
    // The clock was set forward, not left where it stopped.
    let guest_now: f64 = exec(&env, "pauser", "date +%s").trim().parse().unwrap();
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (guest_now - host_now).abs() < 5.0,
        "{guest_now} vs {host_now}"
    );

    // Paused, then removed: nothing left.
    env.ok(&["pause", "pauser"]);
    env.ok(&["down", "pauser"]);
    assert!(!env.home().join("instances/pauser").exists());
}

fn up_like(env: &Env, args: &[&str]) -> Value {
    json(&env.ok(args))
}

#[test]
fn forks_of_a_snapshot_are_independent_and_keep_their_imports() {
    let _g = serial();
    let env = Env::new();
    build(&env, APP, "source");
    up(&env, &["source"]);
    let imported = json(&env.ok(&["invoke", "source", "--entrypoint", "state"]));
    exec(&env, "source", "echo from-source > /root/origin");
    let taken = json(&env.ok(&["snapshot", "source", "base", "--json"]));
    assert_eq!(taken["tag"], "base");
    // The source runs on.
    assert_eq!(
        env.ok(&["invoke", "source", "--input", "name=s"]),
        "\"hi s\"\n"
    );

    let names = ["fork-a", "fork-b", "fork-c"];
    for n in names {
        let forked = up(&env, &["--from-snapshot", "base", "--name", n]);
        assert_eq!(forked["started_by"], "snapshot base", "{forked}");
    }
    let ps = json(&env.ok(&["ps", "--json"]));
    let running = ps
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "running")
        .count();
    assert_eq!(running, 4, "{ps}");

    let mut uuids = Vec::new();
    for n in names {
        // Each fork inherited the source's interpreter with its module
        // imported: the same import time, the call count going on from it.
        let s = json(&env.ok(&["invoke", n, "--entrypoint", "state"]));
        assert_eq!(s["imported_at"], imported["imported_at"], "{n}: {s}");
        assert_eq!(s["calls"], 2, "{n}: {s}");
        assert_eq!(exec(&env, n, "cat /root/origin"), "from-source\n");
        exec(&env, n, &format!("echo {n} > /root/mine"));
        uuids.push(exec(&env, n, "cat /proc/sys/kernel/random/uuid"));
    }
    for n in names {
        // Writes in one are seen in no other.
        assert_eq!(exec(&env, n, "cat /root/mine"), format!("{n}\n"));
    }
    assert!(
        exec(&env, "source", "ls /root")
            .lines()
            .all(|l| l != "mine")
    );
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 3, "forks share random state: {uuids:?}");

    let list = json(&env.ok(&["snapshot", "list", "--json"]));
    assert_eq!(list[0]["tag"], "base");
    assert_eq!(list[0]["source"], "source");
    assert!(list[0]["size_bytes"].as_u64().unwrap() > 1 << 20, "{list}");
    assert!(list[0]["problem"].is_null(), "{list}");

    // Unnamed forks get the first free TAG-N.
    let auto = up(&env, &["--from-snapshot", "base"]);
    assert_eq!(auto["name"], "base-1", "{auto}");
    env.ok(&["down", "base-1"]);

    // A tampered snapshot is refused before anything runs.
    env.ok(&["snapshot", "source", "bad"]);
    let state = env.home().join("snapshots/bad/vm.state");
    let len = std::fs::metadata(&state).unwrap().len();
    flip_byte(&state, len / 2);
    let out = env.mvmctl(&["up", "--from-snapshot", "bad", "--name", "fork-bad"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vm.state") && err.contains("tampered"),
        "{err}"
    );
    assert!(!env.home().join("instances/fork-bad").exists());
    // And listed as unusable.
    let list = json(&env.ok(&["snapshot", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // An edited manifest breaks the seal.
    env.ok(&["snapshot", "source", "edited"]);
    let manifest = env.home().join("snapshots/edited/manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"tagged\"", "\"taggeD\"")).unwrap();
    let out = env.mvmctl(&["up", "--from-snapshot", "edited", "--name", "fork-ed"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("seal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    env.ok(&["snapshot", "rm", "bad"]);
    env.ok(&["snapshot", "rm", "edited"]);
    assert!(!env.home().join("snapshots/bad").exists());
    let out = env.mvmctl(&["snapshot", "rm", "bad"]);
    assert!(!out.status.success());
}

#[test]
fn a_snapshot_killed_part_way_is_never_used() {
    let _g = serial();
    let env = Env::new();
    build(&env, APP, "victim");
    up(&env, &["victim"]);
    let qemu_pid = state_json(&env, "victim")["qemu"]["pid"].as_i64().unwrap();

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mvmctl"));
    cmd.args(["snapshot", "victim", "half"])
        .env("MVM_HOME", env.home())
        .env("MVM_SECRETS_KEY_FILE", env.secrets_key())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Part-way through saving ~70 MiB: the migration has started.
    let snapshots = env.home().join("snapshots");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !staging_exists(&snapshots) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signals the test's own QEMU.
    unsafe { libc::kill(qemu_pid as i32, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = env.mvmctl(&["up", "--from-snapshot", "half", "--name", "fork"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no snapshot tagged `half`"), "{err}");
    let list = json(&env.ok(&["snapshot", "list", "--json"]));
    assert_eq!(list, Value::Array(vec![]));
    // The dead instance is reported as such and removed cleanly.
    let ps = json(&env.ok(&["ps", "--json"]));
    assert_eq!(ps[0]["status"], "dead", "{ps}");
    env.ok(&["down", "victim"]);
}

fn staging_exists(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".staging-"))
    })
}
