//! Managing what mvm keeps on disk, on real images and microVMs: `image
//! list|inspect|rm`, `prune` and `cache clean` remove what nothing uses
//! and never what an instance, a snapshot or a name does; a prune killed
//! part-way leaves a store that reads and that a second prune finishes.

#[path = "common/vm_env.rs"]
mod vm_env;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use vm_env::{Env, serial};

const APP: &str = r#"import mvm


@mvm.app(
    name="keep",
    source=mvm.local_path("."),
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    env={"GREETING": mvm.literal("VERSION")},
)
def greet(name: str) -> str:
    import os

    return f"{os.environ['GREETING']} {name}"
"#;

/// Builds version `version` of the app named `name`; returns its image id.
fn build(env: &Env, name: &str, version: &str) -> String {
    let src = env.tmp.path().join(format!("{name}-{version}-src"));
    std::fs::create_dir_all(&src).unwrap();
    let text = APP
        .replace("\"keep\"", &format!("\"{name}\""))
        .replace("VERSION", version);
    std::fs::write(src.join("app.py"), text).unwrap();
    let out = env.tmp.path().join(format!("{name}-{version}-compiled"));
    env.ok(&[
        "compile",
        src.join("app.py").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let built = json(&env.ok(&["build", out.to_str().unwrap(), "--json"]));
    built["image_id"].as_str().unwrap().to_string()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn images(env: &Env) -> Vec<Value> {
    json(&env.ok(&["image", "list", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

fn ids(env: &Env) -> Vec<String> {
    let mut ids: Vec<String> = images(env)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn removed(report: &Value, kind: &str) -> Vec<String> {
    report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["what"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The `--json` error shape on stderr of a failed run.
fn error_of(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    json(stderr.lines().last().expect("an error line"))["error"].clone()
}

fn kill(pid: i64) {
    // SAFETY: signals a process this test started (through mvmctl).
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

#[test]
fn prune_and_image_rm_never_take_what_an_instance_a_snapshot_or_a_name_uses() {
    let _g = serial();
    let env = Env::new();
    let v1 = build(&env, "keep", "one");
    let v2 = build(&env, "keep", "two");
    assert_ne!(v1, v2);
    let listed = images(&env);
    let by_id = |id: &str| listed.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(by_id(&v2)["names"], serde_json::json!(["keep"]));
    assert_eq!(by_id(&v1)["names"], serde_json::json!([]));

    // v2 gets an instance and a snapshot, then loses its name to v3.
    env.ok(&["up", "keep"]);
    env.ok(&["snapshot", "keep", "tag1"]);
    let v3 = build(&env, "keep", "three");
    let row = images(&env).into_iter().find(|i| i["id"] == v2).unwrap();
    assert_eq!(
        row["used_by"],
        serde_json::json!(["instance keep", "snapshot tag1"]),
        "{row}"
    );
    let table = env.ok(&["image", "list"]);
    assert!(table.contains("instance keep, snapshot tag1"), "{table}");

    // A record this mvm cannot read (another version's) still keeps its
    // instance and what it names: prune leaves both, rm names it.
    let record = env.home().join("instances/keep/state.json");
    let good = std::fs::read_to_string(&record).unwrap();
    let mut future = json(&good);
    future["status"] = "hibernating".into();
    std::fs::write(&record, future.to_string()).unwrap();
    let pruned = json(&env.ok(&["prune", "--dry-run", "--json"]));
    assert!(removed(&pruned, "instance").is_empty(), "{pruned}");
    assert!(
        pruned["kept"].to_string().contains("instance keep"),
        "{pruned}"
    );
    let e = error_of(&env.mvmctl(&["image", "rm", &v2, "--json"]));
    assert!(
        e["message"].as_str().unwrap().contains("instance keep"),
        "{e}"
    );
    std::fs::write(&record, good).unwrap();

    // A dry run says what it would take and takes nothing.
    let dry = json(&env.ok(&["prune", "--dry-run", "--json"]));
    assert_eq!(dry["dry_run"], true);
    let would = removed(&dry, "image");
    assert_eq!(would.len(), 1, "{dry}");
    assert!(would[0].starts_with(&v1[..12]), "{dry}");
    assert!(
        dry["kept"].to_string().contains(&v2[..12]),
        "the used, unnamed image is not reported as kept: {dry}"
    );
    assert_eq!(ids(&env), sorted(vec![v1.clone(), v2.clone(), v3.clone()]));

    let pruned = json(&env.ok(&["prune", "--json"]));
    assert_eq!(removed(&pruned, "image").len(), 1, "{pruned}");
    assert!(pruned["freed_bytes"].as_u64().unwrap() > 0, "{pruned}");
    assert_eq!(ids(&env), sorted(vec![v2.clone(), v3.clone()]));
    // The instance still works off its image.
    assert_eq!(
        env.ok(&["invoke", "keep", "--input", "name=ari"]).trim(),
        "\"two ari\""
    );

    // In use: refused, with the users named, in the --json error shape.
    let out = env.mvmctl(&["image", "rm", &v2, "--json"]);
    let e = error_of(&out);
    assert_eq!(e["code"], "E_IMAGE_IN_USE", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("instance keep, snapshot tag1"),
        "{e}"
    );
    assert!(e["hint"].as_str().unwrap().contains("--force"), "{e}");
    let out = env.mvmctl(&["image", "rm", &v2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: image "));

    // A dead instance is a leftover; the snapshot still holds the image.
    let st = json(&std::fs::read_to_string(env.home().join("instances/keep/state.json")).unwrap());
    kill(st["supervisor"]["pid"].as_i64().unwrap());
    kill(st["qemu"]["pid"].as_i64().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.ok(&["ps"]).contains("dead") {
        assert!(
            Instant::now() < deadline,
            "the instance never showed as dead"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pruned = json(&env.ok(&["prune", "--json"]));
    assert_eq!(removed(&pruned, "instance"), ["keep (dead)"], "{pruned}");
    assert!(removed(&pruned, "image").is_empty(), "{pruned}");
    assert_eq!(ids(&env), sorted(vec![v2.clone(), v3.clone()]));
    assert!(!env.home().join("instances/keep").exists());

    // A snapshot that fails its seal now still keeps its image.
    let seal = env.home().join("snapshots/tag1/seal");
    let mut bytes = std::fs::read(&seal).unwrap();
    let sealed = bytes.clone();
    bytes[0] ^= 0x5a;
    std::fs::write(&seal, &bytes).unwrap();
    let listed = json(&env.ok(&["snapshot", "list", "--json"]));
    assert!(!listed[0]["problem"].is_null(), "{listed}");
    let pruned = json(&env.ok(&["prune", "--json"]));
    assert!(removed(&pruned, "image").is_empty(), "{pruned}");
    assert_eq!(ids(&env), sorted(vec![v2.clone(), v3.clone()]));
    std::fs::write(&seal, sealed).unwrap();

    // The template the up saved for v2 restores only onto v2's root disk
    // as it was: changed, the template is stale and prune takes it.
    let row = images(&env).into_iter().find(|i| i["id"] == v2).unwrap();
    assert_eq!(row["templates"], 1, "{row}");
    let rootfs = env.home().join("images").join(&v2).join("rootfs.ext4");
    let touched = Command::new("touch")
        .args(["-d", "2030-01-01"])
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(touched.success());
    let pruned = json(&env.ok(&["prune", "--json"]));
    let stale = removed(&pruned, "template");
    assert_eq!(stale.len(), 1, "{pruned}");
    assert!(stale[0].contains("its rootfs changed"), "{pruned}");
    let row = images(&env).into_iter().find(|i| i["id"] == v2).unwrap();
    assert_eq!(row["templates"], 0, "{row}");

    // --force says what else goes, and takes it.
    let forced = json(&env.ok(&["image", "rm", &v2[..12], "--force", "--json"]));
    assert_eq!(removed(&forced, "snapshot"), ["tag1"], "{forced}");
    assert_eq!(removed(&forced, "image").len(), 1, "{forced}");
    assert_eq!(
        json(&env.ok(&["snapshot", "list", "--json"])),
        serde_json::json!([])
    );
    assert_eq!(ids(&env), vec![v3.clone()]);

    // inspect summarises the lock; rm by name of an unused image.
    let shown = env.ok(&["image", "inspect", "keep"]);
    assert!(shown.contains(&v3) && shown.contains("Debian"), "{shown}");
    let inspected = json(&env.ok(&["image", "inspect", "keep", "--json"]));
    assert_eq!(inspected["lock"]["image_id"], v3.as_str());
    let gone = env.ok(&["image", "rm", "keep"]);
    assert!(
        gone.contains("removed image") && gone.contains("freed"),
        "{gone}"
    );
    assert!(images(&env).is_empty());
    let e = error_of(&env.mvmctl(&["image", "rm", "keep", "--json"]));
    assert_eq!(e["code"], "E_TEMPLATE_NOT_FOUND", "{e}");
    // A directory is not an image name: `image rm ./out` removes nothing.
    let dir = env.tmp.path().join("keep-three-compiled");
    let e = error_of(&env.mvmctl(&["image", "rm", dir.to_str().unwrap(), "--json"]));
    assert_eq!(e["code"], "E_TEMPLATE_NOT_FOUND", "{e}");
}

/// `mvmctl prune`, killed at growing delays until one run finishes on its own.
#[test]
fn a_killed_prune_leaves_a_store_that_reads_and_a_second_prune_finishes() {
    let _g = serial();
    let env = Env::new();
    let mut unnamed = Vec::new();
    for v in ["a", "b", "c", "d"] {
        unnamed.push(build(&env, "churn", v));
    }
    let named = unnamed.pop().unwrap();
    assert_eq!(ids(&env).len(), 4);
    let mut delay = Duration::from_millis(2);
    let mut kills = 0;
    loop {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
            .args(["prune"])
            .env("MVM_HOME", env.home())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap();
            kills += 1;
        }
        let status = child.wait().unwrap();
        // Whatever point it died at, the store reads, names only what it
        // holds or nothing at all, and the named image is untouched.
        let now = ids(&env);
        assert!(now.contains(&named), "the named image went: {now:?}");
        for id in &now {
            assert!(unnamed.contains(id) || *id == named, "{id}");
        }
        if finished && status.success() {
            break;
        }
        delay *= 2;
        assert!(delay < Duration::from_secs(60), "prune never finished");
    }
    eprintln!("prune was killed {kills} time(s) before one finished");
    let again = json(&env.ok(&["prune", "--json"]));
    assert!(removed(&again, "image").is_empty(), "{again}");
    assert_eq!(ids(&env), vec![named]);
    let tmp = env.home().join("images/.tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "leftovers after a finished prune: {left:?}"
    );
}

/// The cache the tests' builds and boots use (as mvm finds it).
fn real_cache() -> PathBuf {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("MVM_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("mvm")))
        .unwrap_or_else(|| var("HOME").unwrap().join(".cache/mvm"))
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

fn with_cache(env: &Env, cache: &Path, args: &[&str]) -> Output {
    env.mvmctl_with(args, &[("MVM_CACHE_DIR", cache)])
}

fn cache_ok(env: &Env, cache: &Path, args: &[&str]) -> String {
    let out = with_cache(env, cache, args);
    assert!(out.status.success(), "mvmctl {} failed", args.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cache_clean_keeps_what_an_instance_boots_from_and_takes_the_rest() {
    let _g = serial();
    let env = Env::new();
    build(&env, "cached", "one");
    // A cache of its own, seeded from the real one (kernel, initramfs,
    // wheels), so cleaning it costs the other tests nothing.
    let cache = env.tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for entry in ["kernel", "initramfs", "wheels"] {
        let from = real_cache().join(entry);
        if from.exists() {
            copy_dir(&from, &cache.join(entry));
        }
    }
    // A link in the cache goes as a link: what it points to stays.
    let outside = env.tmp.path().join("not-the-cache");
    std::fs::create_dir_all(outside.join("inner")).unwrap();
    std::fs::write(outside.join("inner/keep.txt"), "mine").unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("linked")).unwrap();
    cache_ok(&env, &cache, &["up", "cached"]);
    let st =
        json(&std::fs::read_to_string(env.home().join("instances/cached/state.json")).unwrap());
    let kernel = PathBuf::from(st["persist"]["vm"]["kernel"].as_str().unwrap());
    let initrd = PathBuf::from(st["persist"]["vm"]["initrd"].as_str().unwrap());
    assert!(
        kernel.starts_with(&cache) && initrd.starts_with(&cache),
        "{st}"
    );

    let dry = json(&cache_ok(
        &env,
        &cache,
        &["cache", "clean", "--dry-run", "--json"],
    ));
    let kept = dry["kept"].to_string();
    assert!(kept.contains("used by instance cached"), "{dry}");
    assert!(!removed(&dry, "cache").is_empty(), "{dry}");
    assert!(kernel.exists());

    let cleaned = json(&cache_ok(&env, &cache, &["cache", "clean", "--json"]));
    assert!(cleaned["freed_bytes"].as_u64().unwrap() > 0, "{cleaned}");
    for gone in removed(&cleaned, "cache") {
        assert!(!Path::new(&gone).exists(), "{gone} is still there");
        assert!(
            !kernel.starts_with(&gone) && !initrd.starts_with(&gone),
            "{gone} held a boot file in use"
        );
    }
    assert!(kernel.exists() && initrd.exists());
    assert!(!cache.join("linked").exists() && outside.join("inner/keep.txt").is_file());
    // The instance pauses and resumes from the files that were kept.
    cache_ok(&env, &cache, &["pause", "cached"]);
    cache_ok(&env, &cache, &["resume", "cached"]);
    assert_eq!(
        cache_ok(&env, &cache, &["invoke", "cached", "--input", "name=ari"]).trim(),
        "\"one ari\""
    );

    cache_ok(&env, &cache, &["down", "cached"]);
    let cleaned = json(&cache_ok(&env, &cache, &["cache", "clean", "--json"]));
    assert_eq!(cleaned["kept"], serde_json::json!([]), "{cleaned}");
    assert!(!kernel.exists() && !initrd.exists());
}
