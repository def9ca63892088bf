//! The local API (`mvmctl serve`) and the runtime SDKs in live mode, on
//! real microVMs: the Python SDK's whole surface (commands streamed in
//! order, timeouts that kill the process tree, 100 MB each way, background
//! commands, snapshot/fork/pause/resume, ten concurrent creates), the
//! recorded sandbox-script example run live with the results of its
//! compiled form, a TTL that fires after its client and the server were
//! SIGKILLed, and `mvmctl cp`.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vm_env::{Env, repo_root, serial};

/// `mvmctl serve` for one test's home; killed when dropped.
struct Server {
    child: Child,
    socket: PathBuf,
}

impl Server {
    fn start(env: &Env) -> Server {
        std::fs::create_dir_all(env.home()).unwrap();
        let socket = env.home().join("api.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .arg("serve")
            .env("MVM_HOME", env.home())
            .env("MVM_SECRETS_KEY_FILE", env.secrets_key())
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(env.tmp.path().join("serve.log")).unwrap())
            .spawn()
            .expect("mvmctl serve");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "mvmctl serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, socket }
    }

    fn url(&self) -> String {
        format!("unix:{}", self.socket.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python(env: &Env, server: &Server, script: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args(args)
        .env("PYTHONPATH", repo_root().join("sdk/python/src"))
        .env("MVM_API_URL", server.url())
        .env("MVM_HOME", env.home())
        .env_remove("MVM_SDK_MODE");
    cmd
}

fn run_ok(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().expect(what);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "$ {what}\n[exit {:?}]\n{stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed");
    stdout
}

fn serve_log(env: &Env) -> String {
    std::fs::read_to_string(env.tmp.path().join("serve.log")).unwrap_or_default()
}

#[test]
fn python_sdk_live_mode_end_to_end() {
    let _g = serial();
    let env = Env::new();
    let server = Server::start(&env);
    let script = repo_root().join("crates/mvmctl/tests/api/live_sdk.py");
    let out = run_ok(python(&env, &server, &script, &[]), "python3 live_sdk.py");
    eprintln!("--- serve.log ---\n{}", serve_log(&env));
    let summary: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("a summary line")).expect("JSON summary");
    eprintln!("summary: {summary}");
    // Every sandbox the script made is gone: it killed them all.
    let left = env.ok(&["ps"]);
    assert_eq!(left.lines().count(), 1, "instances left behind:\n{left}");
}

#[test]
fn the_sandbox_script_example_runs_live_with_the_results_of_its_recording() {
    let _g = serial();
    let env = Env::new();
    let example = repo_root().join("examples/python/sandbox-script");
    // Recorded, compiled, built and started: what its console shows.
    let rec = env.tmp.path().join("rec.json");
    let mut record = Command::new("python3");
    record
        .arg(example.join("script.py"))
        .env("PYTHONPATH", repo_root().join("sdk/python/src"))
        .env("MVM_SDK_MODE", "record")
        .env("MVM_SDK_OUT_PATH", &rec);
    let recorded = run_ok(record, "record script.py");
    assert_eq!(recorded, "", "record mode runs nothing, so prints nothing");
    let out = env.tmp.path().join("compiled");
    env.ok(&[
        "compile",
        "--from-recording",
        rec.to_str().unwrap(),
        "--source-root",
        example.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    env.ok(&["build", out.to_str().unwrap()]);
    env.ok(&["up", "sandbox-script"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let console = loop {
        let log = env.ok(&["logs", "sandbox-script"]);
        if log.contains("hello ari") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(console.contains("setting up"), "{console}");
    assert!(console.contains("hello ari"), "{console}");
    env.ok(&["down", "sandbox-script"]);

    // Live: the same script, each call in a real sandbox.
    let server = Server::start(&env);
    let live = run_ok(
        python(&env, &server, &example.join("script.py"), &[]),
        "python3 script.py (live)",
    );
    assert_eq!(live, "setting up\nhello ari\n");
    let left = env.ok(&["ps"]);
    assert_eq!(
        left.lines().count(),
        1,
        "the `with` block killed it:\n{left}"
    );
}

fn qemu_pid(env: &Env, name: &str) -> i32 {
    let state = env.home().join("instances").join(name).join("state.json");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    st["qemu"]["pid"].as_i64().expect("a qemu pid") as i32
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purposes; /proc/PID/stat's third field says.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}

#[test]
fn a_ttl_fires_after_its_client_and_the_server_were_killed() {
    let _g = serial();
    let env = Env::new();
    let mut server = Server::start(&env);
    let script = repo_root().join("crates/mvmctl/tests/api/ttl_client.py");
    let mut client = python(&env, &server, &script, &["python-3.13", "10"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut id)
        .unwrap();
    let id = id.trim().to_string();
    assert!(id.starts_with("sb-"), "no sandbox id printed: {id:?}");
    let qemu = qemu_pid(&env, &id);
    assert!(alive(qemu));
    // SIGKILL both: nothing of the client side may be needed for the TTL.
    client.kill().unwrap();
    client.wait().unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let gone_by = Instant::now() + Duration::from_secs(60);
    while env.home().join("instances").join(&id).exists() || alive(qemu) {
        assert!(
            Instant::now() < gone_by,
            "the sandbox outlived its TTL:\n{}",
            env.ok(&["ps"])
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let ps = env.ok(&["ps"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
}

#[test]
fn cp_copies_files_in_and_out() {
    let _g = serial();
    let env = Env::new();
    let server = Server::start(&env);
    let mut create = Command::new("python3");
    create
        .args([
            "-c",
            "from mvm import Sandbox; print(Sandbox.create(template='python-3.13', id='cpbox', timeout=600).id)",
        ])
        .env("PYTHONPATH", repo_root().join("sdk/python/src"))
        .env("MVM_API_URL", server.url())
        .env("MVM_HOME", env.home());
    assert_eq!(run_ok(create, "create cpbox").trim(), "cpbox");
    let data: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = env.tmp.path().join("data.bin");
    std::fs::write(&local, &data).unwrap();
    env.ok(&["cp", local.to_str().unwrap(), "cpbox:/app/in/data.bin"]);
    let sum = env.ok(&["exec", "cpbox", "--", "sha256sum", "/app/in/data.bin"]);
    use sha2::Digest;
    let want = format!("{:x}", sha2::Sha256::digest(&data));
    assert!(sum.starts_with(&want), "{sum} vs {want}");
    let back_dir = env.tmp.path().join("back");
    std::fs::create_dir(&back_dir).unwrap();
    env.ok(&["cp", "cpbox:/app/in/data.bin", back_dir.to_str().unwrap()]);
    assert_eq!(std::fs::read(back_dir.join("data.bin")).unwrap(), data);
    let out = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .args(["cp", "cpbox:/app/in/data.bin", "-"])
        .env("MVM_HOME", env.home())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == data, "cp to stdout differs");
    // A missing guest file is an error, and leaves no local file.
    let missing = env.mvmctl(&["cp", "cpbox:/nope", back_dir.join("nope").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nope"));
    assert!(!back_dir.join("nope").exists());
    assert_eq!(
        std::fs::read_dir(&back_dir).unwrap().count(),
        1,
        "a staged file was left"
    );
}

#[test]
fn a_live_sandbox_gets_its_declared_secrets_resources_and_network() {
    let _g = serial();
    let env = Env::new();
    env.secret_set("api-key", "s3cr3t-value-never-in-the-guest");
    let server = Server::start(&env);
    let script = repo_root().join("crates/mvmctl/tests/api/declared.py");
    let out = run_ok(python(&env, &server, &script, &[]), "python3 declared.py");
    assert!(
        !out.contains("s3cr3t"),
        "the secret's value reached the guest: {out}"
    );
    let got: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let key = got["key"].as_str().unwrap();
    assert!(
        key.starts_with("mvm-secret-ref:api-key:"),
        "not a token: {key}"
    );
    assert_eq!(got["cpus"], 2);
    let mem = got["mem_kb"].as_u64().unwrap();
    assert!(
        (300_000..400_000).contains(&mem),
        "MemTotal {mem} kB for 384 MiB"
    );
    // The policy came from the declaration: the image the sandbox ran
    // (named by its `up` record) launches with that egress grant.
    let trail = env.ok(&["audit", "--json", "--instance", got["id"].as_str().unwrap()]);
    let up: serde_json::Value = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event"] == "up")
        .expect("an up record");
    let image = env
        .home()
        .join("images")
        .join(up["image_id"].as_str().unwrap());
    let launch = std::fs::read_to_string(image.join("launch.json")).unwrap();
    assert!(launch.contains("api.example.com"), "{launch}");
    assert!(launch.contains("api-key"), "{launch}");
}

fn tsx() -> PathBuf {
    let tsx = repo_root().join("sdk/typescript/node_modules/.bin/tsx");
    assert!(
        tsx.exists(),
        "run `npm ci` in sdk/typescript first (scripts/test.sh does)"
    );
    tsx
}

fn node(env: &Env, server: &Server, script: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(tsx());
    cmd.arg(script)
        .current_dir(cwd)
        .env("MVM_API_URL", server.url())
        .env("MVM_HOME", env.home())
        .env_remove("MVM_SDK_MODE");
    cmd
}

#[test]
fn typescript_sdk_live_mode_end_to_end() {
    let _g = serial();
    let env = Env::new();
    let server = Server::start(&env);
    let script = repo_root().join("crates/mvmctl/tests/api/live_sdk.mts");
    let out = run_ok(
        node(&env, &server, &script, repo_root()),
        "tsx live_sdk.mts",
    );
    assert_eq!(out.trim_end(), "ok");
    let left = env.ok(&["ps"]);
    assert_eq!(left.lines().count(), 1, "instances left behind:\n{left}");
}

#[test]
fn the_node_sandbox_script_example_runs_live_with_the_results_of_its_recording() {
    let _g = serial();
    let env = Env::new();
    // A project holding the example with mvm-sdk installed.
    let proj = env.tmp.path().join("proj");
    std::fs::create_dir_all(proj.join("node_modules")).unwrap();
    std::os::unix::fs::symlink(
        repo_root().join("sdk/typescript"),
        proj.join("node_modules/mvm-sdk"),
    )
    .unwrap();
    for f in ["script.ts", "package.json"] {
        std::fs::copy(
            repo_root().join("examples/node/sandbox-script").join(f),
            proj.join(f),
        )
        .unwrap();
    }
    let script = proj.join("script.ts");
    let out = env.tmp.path().join("compiled");
    let mut compile = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
    compile
        .args([
            "compile",
            script.to_str().unwrap(),
            "--allow-host-run",
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(&proj)
        .env("MVM_HOME", env.home())
        .env("MVM_TSX", tsx());
    run_ok(compile, "mvmctl compile script.ts --allow-host-run");
    env.ok(&["build", out.to_str().unwrap()]);
    env.ok(&["up", "script"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let console = loop {
        let log = env.ok(&["logs", "script"]);
        if log
            .lines()
            .any(|l| l.trim_end().trim_end_matches("\\r").ends_with("hello"))
            || Instant::now() > deadline
        {
            break log;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        console
            .lines()
            .any(|l| l.trim_end().trim_end_matches("\\r").ends_with("hello")),
        "{console}"
    );
    env.ok(&["down", "script"]);

    let server = Server::start(&env);
    let live = run_ok(node(&env, &server, &script, &proj), "tsx script.ts (live)");
    assert_eq!(live, "hello\n");
    let left = env.ok(&["ps"]);
    assert_eq!(left.lines().count(), 1, "`await using` killed it:\n{left}");
}
