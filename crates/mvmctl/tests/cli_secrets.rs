//! `mvmctl secret`, run as the real binary in a sandbox with its own
//! MVM_HOME and store key file. Every test also checks that no value it
//! stored appears in anything mvmctl printed.

#[path = "common/snap.rs"]
#[macro_use]
mod snap;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mvm_secrets::Store;
use snap::{Outcome, Sandbox};

const V_STDIN: &str = "sk-stdin-4e1f9a7c2b";
const V_ENV: &str = "sk-env-8d3b6f0a51";
const V_FILE: &str = "sk-file-c72e5d9b14";

fn key_file(s: &Sandbox) -> PathBuf {
    s.path().join("elsewhere/secrets.key")
}

fn sandbox() -> Sandbox {
    let mut s = Sandbox::new();
    let key = key_file(&s);
    s.set_env("MVM_SECRETS_KEY_FILE", &key);
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    s
}

fn store(s: &Sandbox) -> Store {
    Store::open_with_key_file(&s.home(), &key_file(s)).unwrap()
}

fn value(s: &Sandbox, name: &str) -> Option<Vec<u8>> {
    store(s).get(name).unwrap().map(|v| v.to_vec())
}

/// No stored value (nor a telling part of one) in any output.
fn assert_no_value(outputs: &[&Outcome], values: &[&str]) {
    for o in outputs {
        for text in [&o.stdout, &o.stderr] {
            for v in values {
                assert!(!text.contains(v), "value {v:?} printed: {text}");
                assert!(!text.contains(&v[3..]), "part of {v:?} printed: {text}");
            }
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn set_from_stdin_env_and_file_then_list_and_rm() {
    let mut s = sandbox();
    s.set_env("MY_TOKEN", V_ENV);
    let file = s.write("token.txt", &format!("{V_FILE}\r\n"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let stdin = s.run(
        &["secret", "set", "openai-api-key"],
        Some(format!("{V_STDIN}\n").as_bytes()),
    );
    assert_eq!(stdin.code, Some(0), "{}", stdin.stderr);
    assert_eq!(stdin.stdout, "");
    assert!(
        stdin
            .stderr
            .starts_with("stored secret openai-api-key from standard input"),
        "{}",
        stdin.stderr
    );
    let env = s.run(
        &["secret", "set", "env.token", "--from-env", "MY_TOKEN"],
        None,
    );
    assert_eq!(env.code, Some(0), "{}", env.stderr);
    let from_file = s.run(
        &["secret", "set", "file_token", "--from-file", "token.txt"],
        None,
    );
    assert_eq!(from_file.code, Some(0), "{}", from_file.stderr);

    // One trailing newline (LF or CRLF) dropped from stdin and files; env exact.
    assert_eq!(value(&s, "openai-api-key").unwrap(), V_STDIN.as_bytes());
    assert_eq!(value(&s, "env.token").unwrap(), V_ENV.as_bytes());
    assert_eq!(value(&s, "file_token").unwrap(), V_FILE.as_bytes());
    // Owner-only, and the value is not on disk in clear.
    let dir = s.home().join("secrets");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("openai-api-key.secret")), 0o600);
    assert_eq!(mode(&key_file(&s)), 0o600);
    let on_disk = std::fs::read_to_string(dir.join("openai-api-key.secret")).unwrap();
    assert!(!on_disk.contains(V_STDIN));

    // Replacing says so and keeps one entry.
    let again = s.run(
        &["secret", "set", "openai-api-key"],
        Some(format!("{V_STDIN}\n").as_bytes()),
    );
    assert!(
        again.stderr.starts_with("replaced secret"),
        "{}",
        again.stderr
    );

    store(&s).touch_used("env.token").unwrap();
    let list = s.run(&["secret", "list"], None);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    snapshot!("secret_list", s.render(&["secret", "list"], &list));

    let json = s.run(&["secret", "list", "--json"], None);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["env.token", "file_token", "openai-api-key"]);
    assert!(rows[0]["last_used"].is_string());
    assert!(rows[1]["last_used"].is_null());
    assert_eq!(
        rows[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["created", "last_used", "name"]
    );

    let rm = s.run(&["secret", "rm", "file_token"], None);
    assert_eq!(rm.code, Some(0), "{}", rm.stderr);
    assert_eq!(rm.stderr, "removed secret file_token\n");
    assert!(value(&s, "file_token").is_none());
    assert!(!dir.join("file_token.secret").exists());
    let after = s.run(&["secret", "list"], None);
    assert!(!after.stdout.contains("file_token"), "{}", after.stdout);
    assert!(after.stdout.contains("env.token"), "{}", after.stdout);

    assert_no_value(
        &[&stdin, &env, &from_file, &again, &list, &json, &rm, &after],
        &[V_STDIN, V_ENV, V_FILE],
    );
}

#[test]
fn rm_of_a_missing_secret_is_an_error_with_a_hint() {
    let s = sandbox();
    snapshot!("secret_rm_missing", s.transcript(&["secret", "rm", "nope"]));
}

#[test]
fn list_of_an_empty_store() {
    let s = sandbox();
    snapshot!("secret_list_empty", s.transcript(&["secret", "list"]));
    assert!(!s.home().join("secrets").exists(), "list creates nothing");
    assert!(!key_file(&s).exists(), "list makes no key");
}

#[test]
fn a_bad_name_is_refused_with_the_rule_and_the_value_is_not_echoed() {
    // From the environment: a pipe mvmctl never reads could fail the write.
    let mut s = sandbox();
    s.set_env("MY_TOKEN", V_STDIN);
    let args = ["secret", "set", "Open AI", "--from-env", "MY_TOKEN"];
    let out = s.run(&args, None);
    snapshot!("secret_set_bad_name", s.render(&args, &out));
    assert_no_value(&[&out], &[V_STDIN]);
    assert!(!s.home().join("secrets").exists());
}

#[test]
fn empty_and_missing_values_are_refused() {
    let s = sandbox();
    snapshot!(
        "secret_set_empty_stdin",
        s.transcript_with_stdin(&["secret", "set", "tok"], Some(b"\n"))
    );
    snapshot!(
        "secret_set_env_unset",
        s.transcript(&["secret", "set", "tok", "--from-env", "NOT_SET_ANYWHERE"])
    );
    let missing = s.run(
        &["secret", "set", "tok", "--from-file", "no/such/file"],
        None,
    );
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("cannot read the value for secret \"tok\" from no/such/file"),
        "{}",
        missing.stderr
    );
    assert!(store(&s).list().unwrap().is_empty());
}

#[test]
fn a_value_too_large_is_refused_without_printing_it() {
    let s = sandbox();
    // One byte over the limit: the exact size is named.
    let mut big = V_STDIN.repeat(70_000 / V_STDIN.len());
    big.truncate(65_537);
    let out = s.run(&["secret", "set", "tok"], Some(big.as_bytes()));
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("the limit is 65536 bytes"),
        "{}",
        out.stderr
    );
    // Far over (a file: mvmctl stops reading at the cap): "more than".
    s.write("huge.txt", &V_STDIN.repeat(200_000 / V_STDIN.len()));
    let out2 = s.run(&["secret", "set", "tok", "--from-file", "huge.txt"], None);
    assert_eq!(out2.code, Some(1));
    assert!(
        out2.stderr.contains("more than 65536 bytes"),
        "{}",
        out2.stderr
    );
    assert_no_value(&[&out, &out2], &[V_STDIN]);
    assert!(store(&s).list().unwrap().is_empty());
}

#[test]
fn a_wrong_key_is_an_error_that_names_no_value() {
    let mut s = sandbox();
    let set = s.run(&["secret", "set", "tok"], Some(V_STDIN.as_bytes()));
    assert_eq!(set.code, Some(0), "{}", set.stderr);
    // Another key file: listing works (no decryption), reading fails clearly.
    let other = s.write("other/secrets.key", &format!("{}\n", "5a".repeat(32)));
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.set_env("MVM_SECRETS_KEY_FILE", &other);
    let list = s.run(&["secret", "list"], None);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let err = Store::open_with_key_file(&s.home(), &other)
        .unwrap()
        .get("tok")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot decrypt secret \"tok\""), "{err}");
    assert!(!err.contains(V_STDIN));
    assert_no_value(&[&set, &list], &[V_STDIN]);
}

#[test]
fn a_symlinked_secrets_dir_is_refused() {
    let s = sandbox();
    let real = s.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir_all(s.home()).unwrap();
    std::os::unix::fs::symlink(&real, s.home().join("secrets")).unwrap();
    let out = s.run(&["secret", "set", "tok"], None);
    snapshot!(
        "secret_set_symlinked_dir",
        s.render(&["secret", "set", "tok"], &out)
    );
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
}

#[test]
fn a_key_file_inside_the_mvm_home_is_refused() {
    let mut s = sandbox();
    s.set_env("MVM_SECRETS_KEY_FILE", s.home().join("secrets.key"));
    s.set_env("MY_TOKEN", V_STDIN);
    let out = s.run(&["secret", "set", "tok", "--from-env", "MY_TOKEN"], None);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("is inside the mvm home"),
        "{}",
        out.stderr
    );
    assert_no_value(&[&out], &[V_STDIN]);
}

#[test]
fn the_default_key_file_is_under_the_config_dir() {
    let mut s = sandbox();
    s.remove_env("MVM_SECRETS_KEY_FILE");
    let out = s.run(&["secret", "set", "tok"], Some(V_STDIN.as_bytes()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let key = s.path().join("user/.config/mvm/secrets.key");
    assert_eq!(mode(&key), 0o600);
    assert!(
        out.stderr.contains(&key.display().to_string()),
        "{}",
        out.stderr
    );

    // Another key place for a store that holds secrets is refused
    // (secret_set_key_lost); with the store emptied it is made.
    assert_eq!(s.run(&["secret", "rm", "tok"], None).code, Some(0));
    s.set_env("XDG_CONFIG_HOME", s.path().join("xdg"));
    let out = s.run(&["secret", "set", "tok2"], Some(V_ENV.as_bytes()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(mode(&s.path().join("xdg/mvm/secrets.key")), 0o600);
    let v = Store::open_with_key_file(&s.home(), &s.path().join("xdg/mvm/secrets.key"))
        .unwrap()
        .get("tok2")
        .unwrap()
        .unwrap();
    assert_eq!(v.as_slice(), V_ENV.as_bytes());
}

#[test]
fn a_lost_key_is_not_silently_replaced() {
    let s = sandbox();
    let set = s.run(&["secret", "set", "tok"], Some(V_STDIN.as_bytes()));
    assert_eq!(set.code, Some(0), "{}", set.stderr);
    std::fs::remove_file(key_file(&s)).unwrap();
    let out = s.run(&["secret", "set", "other"], Some(V_ENV.as_bytes()));
    snapshot!(
        "secret_set_key_lost",
        s.render(&["secret", "set", "other"], &out)
    );
    assert!(!key_file(&s).exists());
    assert_no_value(&[&set, &out], &[V_STDIN, V_ENV]);
}

/// On a terminal `set` prompts and the typed value is not echoed: mvmctl
/// runs on a fresh pseudo-terminal as its controlling terminal.
#[test]
fn on_a_terminal_the_value_is_prompted_for_without_echo() {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;

    let s = sandbox();
    let (mut master, slave) = {
        let (mut m, mut sl) = (0, 0);
        // SAFETY: openpty writes two fds into the given ints.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut sl,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are owned here.
        unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(sl)) }
    };
    let mut cmd = s.command(&["secret", "set", "tty-token"]);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // The command keeps its copies of the slave: drop them all, or the
    // master never sees the end.
    drop(cmd);
    drop(slave);
    // Read until the prompt, then type.
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("(not echoed): ") {
        let n = master.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    master.write_all(format!("{V_STDIN}\n").as_bytes()).unwrap();
    // Read to the end (EIO once mvmctl, the last holder of the slave,
    // exits), and only then reap it: output is never lost to a race.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(status.success(), "{text}");
    assert!(text.contains("stored secret tty-token"), "{text}");
    assert!(
        !text.contains(V_STDIN),
        "the typed value was echoed: {text}"
    );
    assert_eq!(value(&s, "tty-token").unwrap(), V_STDIN.as_bytes());
}
