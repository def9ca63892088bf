//! Whole-output snapshots of the real `mvmctl` binary: a command's exit
//! code, stdout and stderr as one transcript, compared with a reviewed
//! `.snap` file under tests/snapshots/ (insta).
//!
//! A transcript must read the same on every machine and every run, so the
//! sandbox runs mvmctl with a cleared environment in its own temporary
//! directory, names files relative to it, and `normalise` replaces what
//! differs between machines (the temporary directory, image ids, sizes,
//! timings, free space, PIDs) with `[PLACEHOLDERS]`. Everything a person
//! reads (messages, hints, codes, layout) is kept as printed.
//!
//! Record or update with `INSTA_UPDATE=always cargo test -p mvmctl --test
//! cli_snapshots` (or `cargo insta review`), then read every changed .snap.

#![allow(dead_code)] // each test file uses its own subset

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regex::Regex;

/// The repository root (examples/ lives there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One regex replacement applied to a transcript after the path ones.
pub struct Filter {
    pub pattern: Regex,
    pub replacement: String,
}

pub fn filter(pattern: &str, replacement: &str) -> Filter {
    Filter {
        pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("filter {pattern}: {e}")),
        replacement: replacement.to_owned(),
    }
}

/// What one command did.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A temporary working directory, MVM_HOME and cache that mvmctl runs in.
pub struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(OsString, OsString)>,
    /// Exact strings (paths, ids) → placeholder, longest first when applied.
    literals: Vec<(String, String)>,
    pub filters: Vec<Filter>,
}

impl Sandbox {
    /// A sandbox whose store and cache are its own: nothing is read from
    /// or written to the user's mvm directories.
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sandbox {
            env: Vec::new(),
            literals: Vec::new(),
            filters: Vec::new(),
            dir,
        };
        let root = s.path().to_path_buf();
        s.literal(&root.to_string_lossy(), "[TMP]");
        if let Ok(real) = root.canonicalize() {
            s.literal(&real.to_string_lossy(), "[TMP]");
        }
        s.set_env("PATH", std::env::var_os("PATH").unwrap_or_default());
        s.set_env("HOME", root.join("user"));
        s.set_env("MVM_HOME", root.join("mvm-home"));
        s.set_env("MVM_CACHE_DIR", root.join("mvm-cache"));
        s
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// MVM_HOME of this sandbox.
    pub fn home(&self) -> PathBuf {
        self.path().join("mvm-home")
    }

    pub fn set_env(&mut self, key: &str, value: impl Into<OsString>) {
        let key = OsString::from(key);
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
    }

    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Print `text` as `placeholder` wherever it appears.
    pub fn literal(&mut self, text: &str, placeholder: &str) {
        assert!(!text.is_empty());
        self.literals
            .push((text.to_owned(), placeholder.to_owned()));
        self.literals
            .sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    }

    pub fn add_filter(&mut self, pattern: &str, replacement: &str) {
        self.filters.push(filter(pattern, replacement));
    }

    /// Write a file (parents too) with fixed modes, 0644 and 0755, so the
    /// review reads the same whatever the umask (a private file is a
    /// finding).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        let mut dirs = Vec::new();
        let mut dir = path.parent().unwrap();
        while dir != self.path() && !dir.exists() {
            dirs.push(dir.to_path_buf());
            dir = dir.parent().unwrap();
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for d in dirs {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// A file of the repository's examples/, e.g.
    /// `examples/python/hello-app/app.py`.
    pub fn example(rel: &str) -> String {
        std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// mvmctl with only this sandbox's environment, run from its directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.path());
        cmd
    }

    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Outcome {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("mvmctl starts");
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let outcome = Outcome {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        };
        // Shown when a test fails.
        eprintln!(
            "$ mvmctl {}\n[exit {:?}]\n{}{}",
            args.join(" "),
            outcome.code,
            outcome.stdout,
            outcome.stderr
        );
        outcome
    }

    /// Run and render: the command line, exit code, stdout, stderr.
    pub fn transcript(&self, args: &[&str]) -> String {
        self.transcript_with_stdin(args, None)
    }

    pub fn transcript_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        self.render(args, &out)
    }

    pub fn render(&self, args: &[&str], out: &Outcome) -> String {
        let code = out
            .code
            .map_or_else(|| "killed by a signal".to_owned(), |c| c.to_string());
        let text = format!(
            "{}\nexit code: {code}\n----- stdout -----\n{}----- stderr -----\n{}",
            command_line(args),
            stream(&out.stdout),
            stream(&out.stderr),
        );
        self.normalise(&text)
    }

    /// Replace what differs between machines and runs; see the module doc.
    pub fn normalise(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (literal, placeholder) in &self.literals {
            text = text.replace(literal, placeholder);
        }
        for f in &self.filters {
            text = f
                .pattern
                .replace_all(&text, f.replacement.as_str())
                .into_owned();
        }
        text
    }
}

/// `$ mvmctl ARGS` as a shell would take it: arguments with spaces or
/// quotes are single-quoted.
pub fn command_line(args: &[&str]) -> String {
    let mut line = String::from("$ mvmctl");
    for a in args {
        line.push(' ');
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@[]".contains(c));
        if plain {
            line.push_str(a);
        } else {
            line.push('\'');
            line.push_str(&a.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}

/// A stream as it was printed; a missing final newline is made visible
/// rather than lost.
fn stream(s: &str) -> String {
    match s {
        "" => "(empty)\n".to_owned(),
        s if s.ends_with('\n') => s.to_owned(),
        s => format!("{s}\n[no newline at the end]\n"),
    }
}

/// Compare with the reviewed snapshot `name`. The snapshot's header names
/// no expression: the transcript starts with the command it ran.
macro_rules! snapshot {
    ($name:expr, $text:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.set_omit_expression(true);
        settings.set_prepend_module_to_snapshot(true);
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}

/// `ps`'s table with the columns that change from second to second
/// replaced: the columns are found from the header, then laid out again
/// the way `ps` lays them out (left-aligned, two spaces apart).
pub fn redact_table(table: &str, columns: &[&str]) -> String {
    let mut lines = table.lines();
    let Some(header) = lines.next() else {
        return table.to_owned();
    };
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    let cells = |line: &str| -> Vec<String> {
        starts
            .iter()
            .enumerate()
            .map(|(n, &s)| {
                let end = starts.get(n + 1).copied().unwrap_or(line.len());
                line.get(s.min(line.len())..end.min(line.len()))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .collect()
    };
    let names = cells(header);
    let mut rows = vec![names.clone()];
    for line in lines {
        let row = cells(line)
            .into_iter()
            .zip(&names)
            .map(|(cell, name)| {
                if columns.contains(&name.as_str()) {
                    format!("[{name}]")
                } else {
                    cell
                }
            })
            .collect();
        rows.push(row);
    }
    let widths: Vec<usize> = (0..names.len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
