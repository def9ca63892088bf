//! End to end, as a user runs it: `mvmctl compile → build → up → invoke →
//! down` on the examples under examples/, with real images and real
//! microVMs (QEMU; TCG on hosts without usable KVM).
//!
//! Each test owns an MVM_HOME; the kernel and base roots come from the
//! shared MVM_CACHE_DIR so only the first test pays for downloads. VM tests
//! run one at a time: TCG boots stall when they fight for the two cores.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::path::{Path, PathBuf};

use vm_env::{Env, repo_root, serial};

/// Everything `up` and `build` made under a umask of 0 is owner-only:
/// directories 0700, files and sockets 0600 (the QMP socket can run
/// commands on the host; state.json holds secret tokens).
fn assert_owner_only(home: &Path) {
    use std::os::unix::fs::MetadataExt;
    let mode = |p: PathBuf| {
        let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        (p, m.mode() & 0o777)
    };
    let inst = home.join("instances/hello-app");
    for dir in [
        home.join("instances"),
        inst.clone(),
        home.join("images"),
        home.join("images/names"),
        home.join("logs/build"),
    ] {
        let (p, m) = mode(dir);
        assert_eq!(m, 0o700, "{}", p.display());
    }
    for file in [
        "state.json",
        "control.sock",
        "monitor.sock",
        "agent.sock",
        "console.log",
        "supervisor.log",
        "qemu.log",
    ] {
        let (p, m) = mode(inst.join(file));
        assert_eq!(m & 0o077, 0, "{} is {m:o}", p.display());
    }
    // Every file of every stored image, and the names pointing at them.
    let mut checked = 0;
    for dir in std::fs::read_dir(home.join("images")).unwrap().flatten() {
        let is_image = dir.file_name().len() == 64;
        if is_image || dir.file_name() == "names" {
            for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
                let (p, m) = mode(file.path());
                assert_eq!(m & 0o077, 0, "{} is {m:o}", p.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "the store's files were checked");
}

#[test]
fn python_hello_app() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/hello-app/app.py", "hello-app");
    let result = env.ok(&["invoke", "hello-app", "--input", "name=ari"]);
    assert_eq!(result.trim_end(), r#""hello ari""#);
    assert_owner_only(&env.home());
    env.ok(&["down", "hello-app"]);
    let ps = env.ok(&["ps", "--json"]);
    assert!(!ps.contains("hello-app"), "instance left behind: {ps}");
}

#[test]
fn math_two_entrypoints() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/math/mathsvc.py", "math");
    let add = env.ok(&["invoke", "math", "--json", r#"{"a": 6, "b": 7}"#]);
    assert_eq!(add.trim_end(), "13");
    let mul = env.ok(&[
        "invoke",
        "math",
        "--entrypoint",
        "mul",
        "--input",
        "a=6",
        "--input",
        "b=7",
    ]);
    assert_eq!(mul.trim_end(), "42");
    env.ok(&["down", "math"]);
}

/// A TypeScript function on a Node 22 image: Node strips the types, and
/// the module's `import "mvm-sdk"` resolves to the SDK the agent installs.
#[test]
fn typescript_app_on_a_node_image() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/node/hello-app/app.ts", "hello-node");
    let result = env.ok(&["invoke", "hello-node", "--input", "name=ari"]);
    assert_eq!(result.trim_end(), r#""hello ari from node""#);
    let version = env.ok(&["exec", "hello-node", "--", "node", "--version"]);
    assert!(version.starts_with("v22."), "{version}");
    env.ok(&["down", "hello-node"]);
}

/// An npm dependency from package-lock.json, installed by `npm ci` in the
/// builder and imported by a TypeScript function.
#[test]
fn typescript_app_with_an_npm_dependency() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/node/deps-app/app.ts", "deps-node");
    let result = env.ok(&["invoke", "deps-node", "--input", "millis=7200000"]);
    assert_eq!(result.trim_end(), r#""2 hours ago""#);
    let lock = env.image_lock("deps-node");
    assert_eq!(lock["dependencies"]["tool"], "npm");
    assert_eq!(
        lock["dependencies"]["packages"],
        serde_json::json!([{"name": "ms", "version": "2.1.3"}])
    );
    assert_eq!(
        lock["dependencies"]["egress"],
        serde_json::json!(["registry.npmjs.org:443"])
    );
    env.ok(&["down", "deps-node"]);
}

/// The same dependency through pnpm-lock.yaml: the builder runs the pinned
/// pnpm, fetched from the npm registry through the gate.
#[test]
fn typescript_app_with_a_pnpm_dependency() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/node/pnpm-app/app.ts", "pnpm-node");
    let result = env.ok(&["invoke", "pnpm-node", "--input", "millis=90000"]);
    assert_eq!(result.trim_end(), r#""2 minutes ago""#);
    // pnpm links node_modules/ms into its store; the package resolves.
    let listing = env.ok(&["exec", "pnpm-node", "--", "ls", "/app/node_modules/.pnpm"]);
    assert!(listing.contains("ms@2.1.3"), "{listing}");
    env.ok(&["down", "pnpm-node"]);
}

/// A uv.lock dependency, installed in the builder microVM through the
/// egress gate, imported by the function at run time.
#[test]
fn python_app_with_a_locked_dependency() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/deps-app/app.py", "deps-app");
    let result = env.ok(&["invoke", "deps-app", "--input", "n=123456789"]);
    assert_eq!(result.trim_end(), r#""123.5 MB""#);
    // image.lock records what was installed and what the builder could reach.
    let lock = env.image_lock("deps-app");
    let deps = &lock["dependencies"];
    assert_eq!(deps["tool"], "uv");
    // The lockfile's package, and the pip the venv gets from Debian's wheel.
    let packages = deps["packages"].as_array().unwrap();
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["humanize", "pip"], "{packages:?}");
    assert_eq!(packages[0]["version"], "4.17.0");
    // `python` and `pip` are commands, as in python:3.x images; the venv's first.
    let which = env.ok(&[
        "exec",
        "deps-app",
        "--",
        "sh",
        "-c",
        "command -v python; command -v pip; pip --version | cut -c1-4",
    ]);
    assert_eq!(which, "/app/.venv/bin/python\n/app/.venv/bin/pip\npip \n");
    assert_eq!(
        deps["egress"],
        serde_json::json!(["files.pythonhosted.org:443", "pypi.org:443"])
    );
    // The run-time guest has no network: the builder's gate is gone.
    let nics = env.ok(&["exec", "deps-app", "--", "ls", "/sys/class/net"]);
    assert_eq!(nics.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    env.ok(&["down", "deps-app"]);
}

/// The builder's only way out is the egress gate, and the gate relays only
/// the install's grants: a before_build probe in the same boot checks both
/// and fails the build otherwise.
#[test]
fn builder_egress_reaches_only_the_grants() {
    let _g = serial();
    let env = Env::new();
    let src = env.tmp.path().join("probe-app");
    std::fs::create_dir_all(&src).unwrap();
    let example = repo_root().join("examples/python/deps-app");
    for f in ["pyproject.toml", "uv.lock"] {
        std::fs::copy(example.join(f), src.join(f)).unwrap();
    }
    std::fs::write(
        src.join("app.py"),
        r#"import mvm


@mvm.app(
    name="probe-app",
    source=mvm.local_path(".", include=["app.py", "probe.py", "pyproject.toml", "uv.lock"]),
    image=mvm.python_image(python="3.13", packages=["uv"]),
    dependencies=mvm.python_deps(lockfile="uv.lock", tool="uv"),
    before_build=mvm.hook(["python3", "/app/probe.py"]),
)
def probe() -> str:
    return "ok"
"#,
    )
    .unwrap();
    // A host service the guest would reach at 10.0.2.2 on an unrestricted
    // user network; the probe must not get through to it.
    let host_service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    std::fs::write(
        src.join("probe.py"),
        r#"import socket, sys

def through_gate(target):
    s = socket.create_connection(("10.0.2.100", 3128), timeout=20)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(200)
        if not chunk:
            break
        head += chunk
    return head.split(b"\r\n")[0].decode()

granted = through_gate("pypi.org:443")
refused = through_gate("example.org:443")
print("granted:", granted, "| refused:", refused)
if " 200 " not in granted or " 403 " not in refused:
    sys.exit("the gate did not follow the grants")
try:
    socket.create_connection(("10.0.2.2", HOST_PORT), timeout=5)
    sys.exit("the host was reachable around the gate")
except OSError as e:
    print("direct connection failed as it must:", e)
"#
        .replace("HOST_PORT", &host_port.to_string()),
    )
    .unwrap();
    let out = env.tmp.path().join("probe-compiled");
    let out = out.to_str().unwrap();
    env.ok(&[
        "compile",
        src.join("app.py").to_str().unwrap(),
        "--out",
        out,
    ]);
    let build = env.mvmctl(&["build", out, "--json"]);
    assert!(build.status.success(), "the probe failed the build");
    let report: serde_json::Value = serde_json::from_slice(&build.stdout).expect("build --json");
    let image_dir = Path::new(report["lock_path"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let log = std::fs::read_to_string(image_dir.join("build.log")).expect("build.log");
    assert!(
        log.contains("egress: refused: example.org:443 is not granted"),
        "the gate's refusal is logged: {log}"
    );
    assert!(log.contains("egress: relaying pypi.org:443"), "{log}");
    assert!(log.contains("direct connection failed as it must"), "{log}");
    drop(host_service);
}

#[test]
fn command_service_with_every_hook() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/service/app.py", "service");
    let events = env.ok(&["exec", "service", "--", "cat", "/run/mvm-events.log"]);
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines,
        [
            "before_start banner=hi",
            "built-at-build-time",
            "service-start banner=hi",
            "after_start-ok",
        ],
        "hooks and service ran out of order"
    );
    let down = env.mvmctl(&["down", "service"]);
    assert!(down.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&down.stdout),
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        said.contains("before_stop"),
        "before_stop output not shown by down: {said}"
    );
}

/// A hook's output reaches the user's terminal in `up`'s error; a hostile
/// hook that prints terminal control sequences (OSC 52 writes the
/// clipboard) must have them shown escaped, never sent.
#[test]
fn a_failing_hooks_terminal_escapes_are_shown_not_sent() {
    let _g = serial();
    let env = Env::new();
    let src = env.tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.py"), "def f():\n    return 1\n").unwrap();
    let ir = serde_json::json!({
        "schema_version": "0.1", "id": "escapes",
        "apps": [{
            "name": "escapes",
            "source": {"kind": "local_path", "path": ".", "include": ["app.py"]},
            "image": {"kind": "nix_packages", "packages": ["python313"]},
            "entrypoints": [{"kind": "function", "name": "f", "language": "python",
                             "module": "app", "function": "f", "primary": true}],
            "hooks": {"before_start": [{"kind": "shell",
                "line": "printf '\\033]52;c;cHduZWQ=\\007\\033[2Jhostile\\n'; exit 1"}]}
        }]
    });
    let file = src.join("workload.json");
    std::fs::write(&file, ir.to_string()).unwrap();
    let out = env.tmp.path().join("escapes-compiled");
    env.ok(&[
        "compile",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    env.ok(&["build", out.to_str().unwrap()]);
    let up = env.mvmctl(&["up", "escapes"]);
    assert!(!up.status.success());
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(stderr.contains("hostile"), "{stderr}");
    assert!(
        !up.stderr.contains(&0x1b) && !up.stderr.contains(&0x07),
        "raw control bytes reached the terminal: {stderr:?}"
    );
    assert!(stderr.contains("\\x1b]52"), "{stderr}");
}
