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

/// Copies the console log to `out`. With `follow`, keeps copying new output
/// until the instance is removed (`mvmctl down`).
pub fn logs(
    home: &Path,
    name: &InstanceName,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), RuntimeError> {
    let dir = InstanceDir::new(home, name.clone());
    if !dir.dir.is_dir() {
        return Err(RuntimeError::NoSuchInstance {
            name: name.to_string(),
        });
    }
    let path = dir.console_log();
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
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| io("reading", e))?;
        if n > 0 {
            // A closed reader (e.g. `| head`) ends the command quietly.
            if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                return Ok(());
            }
            continue;
        }
        if !follow || !dir.dir.is_dir() {
            return Ok(());
        }
        // Reading past the end again picks up what was appended meanwhile.
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_log_and_follows_until_removed() {
        let home = tempfile::tempdir().unwrap();
        let name = InstanceName::parse("web").unwrap();
        let dir = InstanceDir::new(home.path(), name.clone());
        std::fs::create_dir_all(&dir.dir).unwrap();
        std::fs::write(dir.console_log(), "boot\n").unwrap();

        let mut out = Vec::new();
        logs(home.path(), &name, false, &mut out).unwrap();
        assert_eq!(out, b"boot\n");

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
        logs(home.path(), &name, true, &mut followed).unwrap();
        writer.join().unwrap();
        assert_eq!(followed, b"boot\nready\n");
    }

    #[test]
    fn unknown_instance_is_an_error() {
        let home = tempfile::tempdir().unwrap();
        let err = logs(
            home.path(),
            &InstanceName::parse("nope").unwrap(),
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
