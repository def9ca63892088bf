//! Instance lifecycle against real QEMU (TCG here) with the real guest
//! kernel, agent and a real Debian root image. Tests run one at a time:
//! each boots microVMs, and the machine has two cores.
//!
//! This binary is also the supervisor in these tests: `up` starts
//! `<this test binary> __supervise NAME`, exactly as mvmctl starts itself.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use mvm_runtime::InstanceName;
use mvm_runtime::admission::AdmissionRequest;
use mvm_runtime::call::{self, InvokeOutcome};
use mvm_runtime::state::{ImageRef, InstanceState};
use mvm_runtime::up::{BootAssets, SupervisorCommand, UpOptions, up_image};
use serde_json::{Value, json};

use support::fixture;

/// Generous: a TCG boot takes 6–10 s alone, much longer with four at once
/// on a busy two-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

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
    // The secret store's key lives outside every test home; the
    // supervisors inherit this.
    let key_dir = tempfile::tempdir().unwrap();
    // SAFETY: set before any thread starts.
    unsafe { std::env::set_var("MVM_SECRETS_KEY_FILE", key_dir.path().join("secrets.key")) };
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let tests = vec![
        Trial::test("up_invoke_ps_down", up_invoke_ps_down),
        Trial::test("exec_streams_and_exit_codes", exec_streams_and_exit_codes),
        Trial::test(
            "exec_timeout_kills_the_process_tree",
            exec_timeout_kills_the_process_tree,
        ),
        Trial::test(
            "hooks_run_in_order_and_readiness_waits",
            hooks_run_in_order_and_readiness_waits,
        ),
        Trial::test(
            "never_ready_fails_and_leaves_nothing",
            never_ready_fails_and_leaves_nothing,
        ),
        Trial::test(
            "before_start_failure_fails_up",
            before_start_failure_fails_up,
        ),
        Trial::test(
            "function_exception_is_structured",
            function_exception_is_structured,
        ),
        Trial::test(
            "killed_qemu_is_dead_and_down_cleans",
            killed_qemu_is_dead_and_down_cleans,
        ),
        Trial::test("four_instances_at_once", four_instances_at_once),
        Trial::test("network_none_has_only_lo", network_none_has_only_lo),
        Trial::test(
            "secrets_reach_the_guest_as_tokens",
            secrets_reach_the_guest_as_tokens,
        ),
        Trial::test("name_collision_is_refused", name_collision_is_refused),
        Trial::test(
            "eight_audited_instances_share_one_verified_trail",
            eight_audited_instances_share_one_verified_trail,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}

/// One MVM_HOME per test; the image and boot assets are shared.
struct Env {
    home: tempfile::TempDir,
    // Dropped after `Drop::drop` has stopped this test's VMs.
    _lock: support::VmLock,
}

impl Env {
    fn new() -> Env {
        let _lock = support::vm_lock(&support::rootfs::cache_dir());
        // Supervisors find their home through MVM_HOME, which up sets for them.
        Env {
            home: tempfile::tempdir().unwrap(),
            _lock,
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn image(&self, env: Value) -> ImageRef {
        let dir = self.home.path().join(format!("launch-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        ImageRef {
            id: "test-image".into(),
            name: "rt-test".into(),
            rootfs: rootfs().clone(),
            lock: None,
            launch_json: fixture::write_launch(&dir, env),
        }
    }

    fn up(
        &self,
        name: &str,
        env: Value,
        timeout: Duration,
    ) -> Result<mvm_runtime::up::UpOutcome, mvm_runtime::RuntimeError> {
        self.up_admitted(name, env, timeout, None)
    }

    /// `up` with admission (and so, by the default policy, auditing).
    fn up_admitted(
        &self,
        name: &str,
        env: Value,
        timeout: Duration,
        admission: Option<AdmissionRequest>,
    ) -> Result<mvm_runtime::up::UpOutcome, mvm_runtime::RuntimeError> {
        let opts = UpOptions {
            name: Some(InstanceName::parse(name).unwrap()),
            ready_timeout: timeout,
            supervisor: supervisor(),
            admission,
            network: Default::default(),
            broker: Default::default(),
            // These measure and test the boot path; templates have their own.
            start: mvm_runtime::up::StartChoice::Cold,
            lease: None,
        };
        up_image(self.home(), self.image(env), assets(), &opts)
    }

    fn state(&self, name: &str) -> InstanceState {
        let dir = mvm_runtime::home::InstanceDir::new(self.home(), n(name));
        InstanceState::load(&dir.state_json()).unwrap()
    }

    fn exec(&self, name: &str, argv: &[&str], timeout: Option<Duration>) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let argv = argv.iter().map(|s| s.to_string()).collect();
        let status = call::exec(self.home(), &n(name), argv, timeout, &mut out, &mut err).unwrap();
        (
            status.exit_code(),
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }
}

impl Drop for Env {
    /// A failed assertion must not leave VMs running.
    fn drop(&mut self) {
        let _ = mvm_runtime::down::down_all(self.home(), Duration::from_secs(2));
    }
}

fn n(name: &str) -> InstanceName {
    InstanceName::parse(name).unwrap()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

fn supervisor() -> SupervisorCommand {
    SupervisorCommand {
        program: std::env::current_exe().unwrap(),
        args: vec!["__supervise".into()],
    }
}

fn rootfs() -> &'static PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(fixture::rootfs)
}

fn assets() -> &'static BootAssets {
    static ASSETS: OnceLock<BootAssets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        mvm_runtime::assets::boot_assets(
            &support::rootfs::cache_dir(),
            mvm_runtime::assets::Progress::Hidden,
        )
        .expect("guest boot assets")
    })
}

/// Every QEMU process whose command line mentions `home`.
fn qemus_under(home: &Path) -> Vec<i32> {
    let needle = home.to_string_lossy().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("qemu-system") && cmdline.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

fn up_invoke_ps_down() -> Result<(), Failed> {
    let env = Env::new();
    let up = env.up("hello", json!({}), READY_TIMEOUT)?;
    eprintln!("timings: {:?}", up.timings);
    check(
        up.timings.boot_ms > 0 && up.timings.total_ms >= up.timings.boot_ms,
        "timings recorded",
    )?;

    let args = mvm_runtime::input::from_pairs(&["name=ari".to_string()])?;
    let out = call::invoke(env.home(), &n("hello"), None, args)?;
    check(
        out == InvokeOutcome::Value(json!("hello ari")),
        format!("primary greet: {out:?}"),
    )?;

    let args = mvm_runtime::input::from_json_object(r#"{"a": 2, "b": 40}"#, "--json")?;
    let out = call::invoke(env.home(), &n("hello"), Some("add".into()), args)?;
    check(
        out == InvokeOutcome::Value(json!(42)),
        format!("add: {out:?}"),
    )?;

    let rows = mvm_runtime::ps::ps(env.home())?;
    check(
        rows.len() == 1 && rows[0].status == "running",
        format!("ps: {rows:?}"),
    )?;
    check(
        rows[0].vcpus == Some(1) && rows[0].memory_mb == Some(256),
        "ps shows resources",
    )?;
    check(rows[0].rss_mb.is_some_and(|r| r > 0), "ps shows QEMU's RSS")?;

    let down = mvm_runtime::down::down(env.home(), &n("hello"), Duration::from_secs(20))?;
    check(
        down.before_stop.as_deref() == Some("before_stop ok"),
        format!("down: {down:?}"),
    )?;
    check(
        !env.home().join("instances/hello").exists(),
        "instance dir removed",
    )?;
    check(qemus_under(env.home()).is_empty(), "no QEMU left")?;
    Ok(())
}

fn exec_streams_and_exit_codes() -> Result<(), Failed> {
    let env = Env::new();
    env.up("ex", json!({}), READY_TIMEOUT)?;
    let (code, out, err) = env.exec("ex", &["sh", "-c", "echo out; echo err >&2; exit 3"], None);
    check(
        code == 3 && out == "out\n" && err == "err\n",
        format!("{code} {out:?} {err:?}"),
    )?;
    let (code, out, _) = env.exec("ex", &["true"], None);
    check(code == 0 && out.is_empty(), "true")?;
    let (code, _, _) = env.exec("ex", &["sh", "-c", "kill -9 $$"], None);
    check(code == 128 + 9, format!("killed by signal: {code}"))?;
    // Output arrives as it is produced, not at exit: many chunks in order.
    let (code, out, _) = env.exec(
        "ex",
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done",
        ],
        None,
    );
    check(code == 0 && out == "1\n2\n3\n4\n5\n", format!("{out:?}"))?;
    // The guest has no RTC; `up` sets its clock from the host's.
    let (_, out, _) = env.exec("ex", &["date", "+%s"], None);
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let guest: i64 = out.trim().parse().unwrap_or(0);
    check(
        (host - guest).abs() < 120,
        format!("guest clock {guest}, host {host}"),
    )?;
    Ok(())
}

fn exec_timeout_kills_the_process_tree() -> Result<(), Failed> {
    let env = Env::new();
    env.up("tmo", json!({}), READY_TIMEOUT)?;
    let (code, _, _) = env.exec(
        "tmo",
        &["sh", "-c", "sleep 100 & sleep 100"],
        Some(Duration::from_secs(1)),
    );
    check(code == 124, format!("timed out: {code}"))?;
    let count_sleeps = "n=0; for p in /proc/[0-9]*; do case \"$(cat $p/cmdline 2>/dev/null | tr '\\0' ' ')\" in 'sleep 100'*) n=$((n+1));; esac; done; echo $n";
    let (_, out, _) = env.exec("tmo", &["sh", "-c", count_sleeps], None);
    check(out.trim() == "0", format!("sleeps left: {out:?}"))?;
    Ok(())
}

fn hooks_run_in_order_and_readiness_waits() -> Result<(), Failed> {
    let env = Env::new();
    let up = env.up(
        "hooks",
        json!({"MVM_TEST_READY_AFTER": {"kind": "literal", "value": "2"}}),
        READY_TIMEOUT,
    )?;
    let (_, order, _) = env.exec("hooks", &["cat", "/tmp/hook-order"], None);
    check(
        order == "before_start\nafter_start\nafter_start\nafter_start\n",
        format!("hook order: {order:?}"),
    )?;
    // Two failed probes 200 ms apart come before the passing one.
    check(
        up.timings.after_start_ms >= 400,
        format!("{:?}", up.timings),
    )?;
    Ok(())
}

fn never_ready_fails_and_leaves_nothing() -> Result<(), Failed> {
    let env = Env::new();
    let err = env
        .up(
            "never",
            json!({"MVM_TEST_READY_AFTER": {"kind": "literal", "value": "never"}}),
            Duration::from_secs(60),
        )
        .err()
        .ok_or("up should fail")?
        .to_string();
    check(
        err.contains("after_start") && err.contains("not ready yet"),
        format!("error: {err}"),
    )?;
    check(
        err.contains("console log"),
        format!("error shows the log tail: {err}"),
    )?;
    check(
        !env.home().join("instances/never").exists(),
        "instance dir removed",
    )?;
    check(qemus_under(env.home()).is_empty(), "no QEMU left")?;
    check(mvm_runtime::ps::ps(env.home())?.is_empty(), "ps empty")?;
    Ok(())
}

fn before_start_failure_fails_up() -> Result<(), Failed> {
    let env = Env::new();
    let err = env
        .up(
            "bsf",
            json!({"MVM_TEST_BEFORE_START_FAIL": {"kind": "literal", "value": "1"}}),
            READY_TIMEOUT,
        )
        .err()
        .ok_or("up should fail")?
        .to_string();
    check(
        err.contains("before_start failed with exit status 3"),
        format!("error: {err}"),
    )?;
    check(
        err.contains("failing on purpose"),
        format!("error shows the hook output: {err}"),
    )?;
    check(
        !env.home().join("instances/bsf").exists() && qemus_under(env.home()).is_empty(),
        "nothing left",
    )?;
    Ok(())
}

fn function_exception_is_structured() -> Result<(), Failed> {
    let env = Env::new();
    env.up("exc", json!({}), READY_TIMEOUT)?;
    match call::invoke(
        env.home(),
        &n("exc"),
        Some("boom".into()),
        Default::default(),
    )? {
        InvokeOutcome::Error {
            kind,
            message,
            traceback,
        } => {
            check(kind == "ValueError", format!("kind {kind}"))?;
            check(
                message.contains("boom on purpose"),
                format!("message {message}"),
            )?;
            check(
                traceback.unwrap_or_default().contains("testmod.py"),
                "traceback names the module",
            )?;
        }
        other => return Err(format!("expected an error, got {other:?}").into()),
    }
    // The runner survives an exception.
    let out = call::invoke(
        env.home(),
        &n("exc"),
        Some("noop".into()),
        Default::default(),
    )?;
    check(out == InvokeOutcome::Value(Value::Null), format!("{out:?}"))?;
    Ok(())
}

fn killed_qemu_is_dead_and_down_cleans() -> Result<(), Failed> {
    let env = Env::new();
    env.up("victim", json!({}), READY_TIMEOUT)?;
    let qemu = env.state("victim").qemu.ok_or("qemu recorded")?;
    check(qemu.signal(libc::SIGKILL), "killed QEMU")?;
    check(qemu.wait_gone(Duration::from_secs(10)), "QEMU gone")?;
    let rows = mvm_runtime::ps::ps(env.home())?;
    check(
        rows.len() == 1 && rows[0].status == "dead",
        format!("ps: {rows:?}"),
    )?;
    let err = call::invoke(env.home(), &n("victim"), None, Default::default())
        .unwrap_err()
        .to_string();
    check(err.contains("is dead"), format!("invoke on dead: {err}"))?;
    let down = mvm_runtime::down::down(env.home(), &n("victim"), Duration::from_secs(2))?;
    check(down.was == "dead", format!("{down:?}"))?;
    check(!env.home().join("instances/victim").exists(), "cleaned")?;
    Ok(())
}

fn four_instances_at_once() -> Result<(), Failed> {
    let env = Env::new();
    let names = ["one", "two", "three", "four"];
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| s.spawn(|| env.up(name, json!({}), READY_TIMEOUT)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().map(|_| ()))
            .collect::<Result<Vec<()>, _>>()
    })?;
    for name in names {
        let args = mvm_runtime::input::from_pairs(&[format!("name={name}")])?;
        let out = call::invoke(env.home(), &n(name), None, args)?;
        check(
            out == InvokeOutcome::Value(json!(format!("hello {name}"))),
            format!("{out:?}"),
        )?;
    }
    let rows = mvm_runtime::ps::ps(env.home())?;
    check(
        rows.iter().filter(|r| r.status == "running").count() == 4,
        format!("ps: {rows:?}"),
    )?;
    for r in mvm_runtime::down::down_all(env.home(), Duration::from_secs(20))? {
        r?;
    }
    check(qemus_under(env.home()).is_empty(), "no QEMU left")?;
    Ok(())
}

fn network_none_has_only_lo() -> Result<(), Failed> {
    let env = Env::new();
    env.up("nonet", json!({}), READY_TIMEOUT)?;
    let (code, out, _) = env.exec("nonet", &["ls", "/sys/class/net"], None);
    check(
        code == 0 && out.split_whitespace().collect::<Vec<_>>() == ["lo"],
        format!("interfaces: {out:?}"),
    )?;
    // lo is up, so a service can listen on 127.0.0.1.
    let (code, out, _) = env.exec(
        "nonet",
        &[
            "cat",
            "/sys/class/net/lo/operstate",
            "/sys/class/net/lo/flags",
        ],
        None,
    );
    check(
        code == 0
            && out.lines().nth(1).is_some_and(|f| {
                u32::from_str_radix(f.trim_start_matches("0x"), 16).is_ok_and(|f| f & 1 == 1)
            }),
        format!("lo state: {out:?}"),
    )?;
    Ok(())
}

fn secrets_reach_the_guest_as_tokens() -> Result<(), Failed> {
    let env = Env::new();
    let vars = json!({
        "API_KEY": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": null, "hosts": []},
        "MODEL": {"kind": "literal", "value": "m1"}
    });
    // Admission: a secret the store lacks refuses `up` before anything starts.
    let refused = env.up("sec", vars.clone(), READY_TIMEOUT);
    let Err(e) = refused else {
        return Err("up started without the secret in the store".into());
    };
    let message = e.to_string();
    check(
        message.contains("api-key") && message.contains("mvmctl secret set api-key"),
        format!("refusal: {message}"),
    )?;
    check(
        !env.home().join("instances/sec").exists(),
        "a refused up leaves no instance directory",
    )?;
    const VALUE: &str = "sk-test-0123456789abcdef";
    mvm_secrets::Store::open(env.home())
        .and_then(|s| s.set("api-key", VALUE.as_bytes()))
        .map_err(|e| format!("storing the secret: {e}"))?;
    env.up("sec", vars, READY_TIMEOUT)?;
    let get = |var: &str| {
        let args = mvm_runtime::input::from_pairs(&[format!("var={var}")]).unwrap();
        call::invoke(env.home(), &n("sec"), Some("getenv".into()), args)
    };
    let InvokeOutcome::Value(Value::String(token)) = get("API_KEY")? else {
        return Err("API_KEY unset".into());
    };
    check(
        token.starts_with("mvm-secret-ref:api-key:"),
        format!("token {token}"),
    )?;
    check(
        get("MODEL")? == InvokeOutcome::Value(json!("m1")),
        "literal env",
    )?;
    let (_, out, _) = env.exec("sec", &["sh", "-c", "echo $API_KEY"], None);
    check(out.trim() == token, "exec sees the same token")?;
    check(!token.contains(VALUE), "the token is not the value")?;
    // The guest never has the value; if output ever holds it (here the
    // operator's own argv put it there), the host relays it redacted, also
    // when it arrives split across chunks.
    let script = format!(
        "printf '{}'; sleep 0.3; printf '{} end'",
        &VALUE[..6],
        &VALUE[6..]
    );
    let (_, out, _) = env.exec("sec", &["sh", "-c", &script], None);
    check(
        out == "[secret:api-key] end",
        format!("relayed exec output is redacted: {out:?}"),
    )?;
    let st_text = std::fs::read_to_string(env.home().join("instances/sec/state.json")).unwrap();
    check(!st_text.contains(VALUE), "state.json holds no value")?;
    let st = env.state("sec");
    check(
        st.persist
            .guest
            .secret_tokens
            .get("API_KEY")
            .map(String::as_str)
            == Some("api-key"),
        "token recorded",
    )?;
    Ok(())
}

fn name_collision_is_refused() -> Result<(), Failed> {
    let env = Env::new();
    env.up("same", json!({}), READY_TIMEOUT)?;
    let err = env
        .up("same", json!({}), READY_TIMEOUT)
        .err()
        .ok_or("second up should fail")?
        .to_string();
    check(
        err.contains("already running") && err.contains("--name"),
        err.clone(),
    )?;
    Ok(())
}

const AUDITED_INSTANCES: usize = 8;
const INVOKES_EACH: usize = 50;

/// Eight instances under the default policy (so audited) boot at once,
/// take 50 invokes each concurrently, and go down: their supervisors and
/// the `up` callers all append to one chain, which must verify with the
/// host audit key and hold exactly each instance's admission, up, 50
/// invokes and down, in that order, with strictly increasing seq.
fn eight_audited_instances_share_one_verified_trail() -> Result<(), Failed> {
    // 8 TCG boots share two cores: far slower than one boot alone.
    const TIMEOUT: Duration = Duration::from_secs(300);
    let env = Env::new();
    let names: Vec<String> = (0..AUDITED_INSTANCES).map(|i| format!("aud-{i}")).collect();
    let admission = AdmissionRequest::from_home(env.home())?;
    check(
        admission.policy.audit && admission.policy.source.is_none(),
        "the default policy audits",
    )?;

    let started = Instant::now();
    let ups = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let admission = admission.clone();
                s.spawn(|| env.up_admitted(name, json!({}), TIMEOUT, Some(admission)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Result<Vec<_>, _>>()
    })?;
    let boot_wall = started.elapsed();
    let slowest = ups.iter().map(|u| u.timings.total_ms).max().unwrap_or(0);
    eprintln!(
        "{AUDITED_INSTANCES} audited ups at once: wall {} ms, slowest ready {slowest} ms",
        boot_wall.as_millis()
    );

    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let env = &env;
                s.spawn(move || -> Result<(), Failed> {
                    for i in 0..INVOKES_EACH {
                        let who = format!("{name}-{i}");
                        let args = mvm_runtime::input::from_pairs(&[format!("name={who}")])?;
                        let out = call::invoke(env.home(), &n(name), None, args)?;
                        check(
                            out == InvokeOutcome::Value(json!(format!("hello {who}"))),
                            format!("{name} invoke {i}: {out:?}"),
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| Failed::from("an invoke thread panicked"))?
        })
    })?;
    let invoke_wall = started.elapsed();
    let total = AUDITED_INSTANCES * INVOKES_EACH;
    eprintln!(
        "{total} invokes across {AUDITED_INSTANCES} instances: wall {} ms ({:.1} invokes/s)",
        invoke_wall.as_millis(),
        total as f64 / invoke_wall.as_secs_f64()
    );

    // Whether each supervisor answered its stop decides how many `down`
    // records it may have (src/down.rs, needs_down_record).
    let started = Instant::now();
    let mut answered = BTreeMap::new();
    for name in &names {
        let down = mvm_runtime::down::down(env.home(), &n(name), Duration::from_secs(20))?;
        answered.insert(name.clone(), down.before_stop.is_some());
    }
    eprintln!("downs: wall {} ms", started.elapsed().as_millis());
    check(qemus_under(env.home()).is_empty(), "no QEMU left")?;

    let audit = mvm_runtime::audit::audit_dir(env.home());
    let key = mvm_keys::KeyRing::new(&mvm_runtime::audit::keys_dir(env.home()))?
        .public(mvm_keys::AUDIT_KEY)?;
    let started = Instant::now();
    let report = mvm_audit::verify(&audit, &key.key)?;
    eprintln!(
        "verify of {} records: {} ms",
        report.records,
        started.elapsed().as_millis()
    );
    check(
        report.ok(),
        format!("audit trail verifies: {:?}", report.problems),
    )?;
    let records = mvm_audit::read(&audit)?;
    check(
        report.records == records.len(),
        format!(
            "verify saw {} records, read {}",
            report.records,
            records.len()
        ),
    )?;
    check(
        records.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq strictly increasing",
    )?;

    // Per instance, the kinds of its records in log order.
    let mut kinds: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for r in &records {
        let instance = r
            .instance
            .clone()
            .ok_or_else(|| format!("record {} names no instance: {}", r.seq, r.raw))?;
        let event = r
            .typed()
            .ok_or_else(|| format!("record {} is no known event: {}", r.seq, r.raw))?;
        let kind = match event {
            mvm_audit::Event::Admission {
                decision: mvm_audit::Decision::Admitted,
                check: None,
                plan_sha256: None,
                ref ir_hash,
                ..
            } if *ir_hash == "0".repeat(64) => "admission",
            mvm_audit::Event::Up {
                ref image_id,
                plan_sha256: None,
                ref accel,
                ..
            } if image_id == "test-image" && *accel == assets().accel.as_str() => "up",
            mvm_audit::Event::Invoke {
                ref entrypoint,
                ok: true,
                ..
            } if entrypoint == "greet" => "invoke",
            mvm_audit::Event::Down {} => "down",
            other => return Err(format!("unexpected record {}: {other:?}", r.seq).into()),
        };
        kinds.entry(instance).or_default().push(kind);
    }
    check(
        kinds.keys().eq(names.iter()),
        format!("instances in the trail: {:?}", kinds.keys()),
    )?;
    let count = |k: &str| kinds.values().flatten().filter(|x| **x == k).count();
    eprintln!(
        "trail: {} records: {} admission, {} up, {} invoke, {} down",
        records.len(),
        count("admission"),
        count("up"),
        count("invoke"),
        count("down")
    );
    for (name, got) in &kinds {
        let mut want = vec!["admission", "up"];
        want.extend(std::iter::repeat_n("invoke", INVOKES_EACH));
        want.push("down");
        // A supervisor that recorded its stop but whose answer was lost
        // leaves `down` to record a second one; one that answered, never.
        let second_down_allowed = !answered[name];
        let mut with_second = want.clone();
        with_second.push("down");
        check(
            *got == want || (second_down_allowed && *got == with_second),
            format!("{name}: records {got:?}"),
        )?;
    }
    check(count("up") == AUDITED_INSTANCES, "8 up")?;
    check(count("invoke") == total, "400 invoke")?;
    check(count("admission") == AUDITED_INSTANCES, "8 admission")?;
    Ok(())
}
