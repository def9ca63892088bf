//! `mvmctl logs`: the instance's console log, optionally followed.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::name::InstanceName;

/// How often `-f` looks for new output: quick enough to feel live, cheap
/// enough to leave running.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which of an instance's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The serial console: kernel, agent, hooks, the command entrypoint.
    Console,
    /// The egress gate's JSON lines.
    Egress,
}

/// Copies the log to `out`. With `follow`, keeps copying new output until
/// the instance is removed (`mvmctl down`).
pub fn logs(
    home: &Path,
    name: &InstanceName,
    which: Which,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), RuntimeError> {
    let dir = InstanceDir::new(home, name.clone());
    if !dir.dir.is_dir() {
        return Err(RuntimeError::NoSuchInstance {
            name: name.to_string(),
        });
    }
    let path = match which {
        Which::Console => dir.console_log(),
        Which::Egress => dir.egress_log(),
    };
    let io = |what: &str, source| RuntimeError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    // The log appears when QEMU starts; an instance still booting may not have one yet.
    let mut file = loop {
        match File::open(&path) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow && dir.dir.is_dir() => {
                std::thread::sleep(FOLLOW_POLL)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("opening", e)),
        }
    };
    // Any secret value in the log is shown as `[secret:NAME]`. A record
    // that cannot be read fails the command; only a directory that never
    // got one (nothing was configured yet) has no secrets.
    let broker = if dir.state_json().exists() {
        crate::state::InstanceState::load(&dir.state_json())?
            .persist
            .broker
    } else {
        Default::default()
    };
    let redactor = crate::broker::redactor_for(home, &broker)?;
    let mut redacting = redactor.stream();
    let mut buf = vec![0u8; 64 * 1024];
    let mut escaper = Escaper::default();
    let mut shown = Vec::with_capacity(buf.len() * 2);
    loop {
        let n = file.read(&mut buf).map_err(|e| io("reading", e))?;
        if n > 0 {
            shown.clear();
            // Redacted before escaping, which could change a value's bytes.
            let clean = redacting.push(&buf[..n]);
            escaper.push(&clean, &mut shown);
            // A closed reader (e.g. `| head`) ends the command quietly.
            if out.write_all(&shown).and_then(|_| out.flush()).is_err() {
                return Ok(());
            }
            continue;
        }
        // The console cap truncated the log: start again at its beginning.
        use std::io::Seek;
        let at = file.stream_position().map_err(|e| io("reading", e))?;
        if file.metadata().is_ok_and(|m| m.len() < at) {
            file.rewind().map_err(|e| io("reading", e))?;
            continue;
        }
        if !follow || !dir.dir.is_dir() {
            shown.clear();
            escaper.push(&redacting.finish(), &mut shown);
            let _ = out.write_all(&shown).and_then(|_| out.flush());
            return Ok(());
        }
        // Reading past the end again picks up what was appended meanwhile.
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// The last `lines` lines of a log file, for error messages, with
/// control characters escaped (the console is guest text).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| printable(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with control characters other than newline and tab escaped,
/// so guest output cannot drive the terminal it is printed on.
pub fn printable(text: &str) -> String {
    mvm_ir::text::escape_control_lines(text).into_owned()
}

/// [`printable`] for a byte stream: the stream is decoded as UTF-8 (a
/// sequence split across reads is carried over), every decoded line goes
/// through `mvm_ir::text::escape_control_lines` (C0, DEL, C1, invisible
/// marks), and bytes that are not UTF-8 are written as `\xNN`, so no raw
/// 8-bit control byte reaches the terminal either.
#[derive(Default)]
struct Escaper {
    pending: Vec<u8>,
}

impl Escaper {
    fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(bytes);
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.extend_from_slice(mvm_ir::text::escape_control_lines(text).as_bytes());
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    let text = std::str::from_utf8(valid).expect("checked as UTF-8");
                    out.extend_from_slice(mvm_ir::text::escape_control_lines(text).as_bytes());
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for the rest.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(n) => {
                            for b in &after[..n] {
                                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                            }
                            rest = &after[n..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_from_the_guest_are_shown_not_sent() {
        let mut e = Escaper::default();
        let mut out = Vec::new();
        e.push(b"ok\tline\n\x1b]0;pwned\x07\x1b[2J\r", &mut out);
        // A C1 CSI split across two reads.
        e.push(b"\xc2", &mut out);
        e.push(b"\x9bA caf\xc3\xa9 \xc2\xa0", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok\tline\n\\x1b]0;pwned\\x07\\x1b[2J\\r\\u{9b}A caf\u{e9} \u{a0}"
        );
        // A lone 8-bit CSI (not UTF-8) and a right-to-left override.
        let mut out = Vec::new();
        e.push(b"a\x9b2Jb \xe2\x80\xae", &mut out);
        e.push(b"evil\n", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\\x9b2Jb \\u{202e}evil\n");
        assert_eq!(printable("a\x1b[31mb"), "a\\x1b[31mb");
    }

    /// A value that reached the console (a guest that learned one) is
    /// shown as `[secret:NAME]`, also when it straddles two reads.
    #[test]
    fn secret_values_in_the_log_are_shown_redacted() {
        let home = tempfile::tempdir().unwrap();
        crate::broker::tests::use_test_key_file();
        let store = mvm_secrets::Store::open(home.path()).unwrap();
        store.set("api-key", b"sk-live-0123456789").unwrap();
        let name = InstanceName::parse("web").unwrap();
        let dir = InstanceDir::new(home.path(), name.clone());
        std::fs::create_dir_all(&dir.dir).unwrap();
        let mut st = crate::state::tests::sample("web");
        st.persist.broker.secrets.push(crate::broker::SecretUse {
            var: "API_KEY".into(),
            name: "api-key".into(),
            token: "mvm-secret-ref:api-key:00".into(),
            auth: crate::launch::SecretAuth::Token,
            header: None,
            hosts: vec![],
        });
        st.save(&dir.state_json()).unwrap();
        let mut console = b"leak: sk-live-0123456789 end\n".to_vec();
        console.extend(std::iter::repeat_n(b'.', 64 * 1024 - console.len() - 5));
        console.extend(b"sk-live-0123456789!\n");
        std::fs::write(dir.console_log(), &console).unwrap();
        let mut out = Vec::new();
        logs(home.path(), &name, Which::Console, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("leak: [secret:api-key] end\n"),
            "{}",
            &text[..40]
        );
        assert!(
            text.ends_with("[secret:api-key]!\n"),
            "{}",
            &text[text.len() - 40..]
        );
        assert!(!text.contains("sk-live"));
        // A record that cannot be read shows nothing rather than everything.
        std::fs::write(dir.state_json(), "{").unwrap();
        assert!(logs(home.path(), &name, Which::Console, false, &mut Vec::new()).is_err());
    }

    #[test]
    fn prints_the_log_and_follows_until_removed() {
        let home = tempfile::tempdir().unwrap();
        let name = InstanceName::parse("web").unwrap();
        let dir = InstanceDir::new(home.path(), name.clone());
        std::fs::create_dir_all(&dir.dir).unwrap();
        std::fs::write(dir.console_log(), "boot\n").unwrap();

        let mut out = Vec::new();
        logs(home.path(), &name, Which::Console, false, &mut out).unwrap();
        assert_eq!(out, b"boot\n");
        std::fs::write(dir.egress_log(), "{\"kind\":\"connect\"}\n").unwrap();
        let mut egress = Vec::new();
        logs(home.path(), &name, Which::Egress, false, &mut egress).unwrap();
        assert_eq!(egress, b"{\"kind\":\"connect\"}\n");

        let log = dir.console_log();
        let instance_dir = dir.dir.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .unwrap()
                .write_all(b"ready\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(500));
            std::fs::remove_dir_all(&instance_dir).unwrap();
        });
        let mut followed = Vec::new();
        logs(home.path(), &name, Which::Console, true, &mut followed).unwrap();
        writer.join().unwrap();
        assert_eq!(followed, b"boot\nready\n");
    }

    #[test]
    fn unknown_instance_is_an_error() {
        let home = tempfile::tempdir().unwrap();
        let err = logs(
            home.path(),
            &InstanceName::parse("nope").unwrap(),
            Which::Console,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no instance named `nope`"));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(&p, "1\n2\n3\n4\n").unwrap();
        assert_eq!(tail(&p, 2), "3\n4");
        assert_eq!(tail(&d.path().join("missing"), 2), "");
    }
}
