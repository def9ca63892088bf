//! The environment a `before_start` hook exports, carried on to the
//! entrypoint, `exec` and the later hooks of the same boot.
//!
//! The phase script is sourced by a small wrapper shell, which afterwards
//! lists its environment with `env -0` into an anonymous file on fd 3. The
//! hook's own output is never parsed, and fd 3 is closed while the script
//! runs (the shell keeps its copy close-on-exec), so nothing the hook starts
//! holds it. A file rather than a pipe: a listing larger than a pipe buffer
//! cannot block the shell, and reading it needs no second thread.
//!
//! Only variables that are new or changed relative to the environment the
//! hook was given are kept; see [`exports`] for the rules.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// At most this much of the listing is read. `execve` caps a process's
/// environment far below this, so only a broken listing comes near it.
const MAX_LISTING_BYTES: u64 = 8 * 1024 * 1024;
/// Limits on what a hook may export (names and values together), so a
/// runaway hook cannot swell every later process's environment.
pub const MAX_EXPORTED_BYTES: usize = 1024 * 1024;
pub const MAX_EXPORTED_VARS: usize = 1024;

/// Set by the shell itself, not by the hook.
const SHELL_VARS: [&str; 4] = ["PWD", "OLDPWD", "SHLVL", "_"];

/// The wrapper passed to `/bin/sh -c`, with the script as `$0`.
///
/// `. "$0"` is a command of its own, not part of an `&&` list, so the
/// script's `set -e` keeps its meaning; a script that turned `-e` off
/// still fails with its last command's status. `env` is named by its full
/// path so a hook that replaced `PATH` is still listed.
pub fn wrapper(env_program: &str) -> String {
    format!(
        "{{ . \"$0\"; }} 3>&-\n\
         __mvm_status=$?\n\
         [ \"$__mvm_status\" -eq 0 ] || exit \"$__mvm_status\"\n\
         {} -0 >&3 || {{ echo 'mvm-agent: before_start ran, but `env -0` could not list the environment it exported; the image needs an env that takes -0, such as the one in GNU coreutils' >&2; exit 125; }}\n",
        shell_quote(env_program)
    )
}

/// `env` from the directories of `path` (the base `PATH`), or plain `env`.
pub fn env_program(path: &str) -> String {
    path.split(':')
        .map(|dir| Path::new(dir).join("env"))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "env".into())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An anonymous file for the listing, close-on-exec until placed on fd 3.
pub fn listing_file() -> io::Result<File> {
    // SAFETY: memfd_create with a NUL-terminated name; the fd it returns
    // is owned by nobody else.
    let fd = unsafe { libc::memfd_create(c"mvm-before-start-env".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Reads the listing back. `None`: the shell never listed its environment
/// (the script ended with `exit 0`), so nothing was exported.
pub fn read_listing(file: &mut File) -> Result<Option<Vec<u8>>, String> {
    let fail = |e: io::Error| format!("cannot read the environment before_start exported: {e}");
    file.rewind().map_err(fail)?;
    let mut listing = Vec::new();
    file.take(MAX_LISTING_BYTES + 1)
        .read_to_end(&mut listing)
        .map_err(fail)?;
    if listing.len() as u64 > MAX_LISTING_BYTES {
        return Err(format!(
            "the environment before_start left is over {MAX_LISTING_BYTES} bytes; refusing it"
        ));
    }
    Ok((!listing.is_empty()).then_some(listing))
}

/// What the hook exported, and a note for each variable it tried to
/// export but that is not carried on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exports {
    pub vars: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

/// Picks the exports out of an `env -0` listing. `given` is the
/// environment the hook started with, `configured` the part of it the host
/// set with `Configure` (the image's `env`, secret tokens included).
///
/// - kept: a variable that is new, or whose value changed (`PATH` too);
/// - ignored with a note: a configured variable with another value (the
///   image's `env` wins, so a hook cannot replace a secret token), a name
///   that is not `[A-Za-z_][A-Za-z0-9_]*`, a value that is not UTF-8;
/// - ignored silently: what the shell sets itself (`PWD`, `OLDPWD`,
///   `SHLVL`, `_`); unset variables are not carried on (they are absent
///   from the listing, and only additions count);
/// - an error: more than [`MAX_EXPORTED_VARS`] variables or
///   [`MAX_EXPORTED_BYTES`] bytes kept.
pub fn exports(
    listing: &[u8],
    given: &BTreeMap<String, String>,
    configured: &BTreeMap<String, String>,
) -> Result<Exports, String> {
    let mut out = Exports::default();
    let mut bytes = 0;
    for record in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(eq) = record.iter().position(|&b| b == b'=') else {
            out.notes
                .push(format!("ignored `{}`: not NAME=VALUE", shown(record)));
            continue;
        };
        let (raw_name, value) = (&record[..eq], &record[eq + 1..]);
        let Ok(name) = std::str::from_utf8(raw_name) else {
            out.notes.push(format!(
                "ignored `{}`: not a valid variable name",
                shown(raw_name)
            ));
            continue;
        };
        if SHELL_VARS.contains(&name) || given.get(name).is_some_and(|v| v.as_bytes() == value) {
            continue;
        }
        if !valid_name(name) {
            out.notes.push(format!(
                "ignored `{}`: not a valid variable name",
                shown(raw_name)
            ));
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            out.notes
                .push(format!("ignored {name}: its value is not UTF-8"));
            continue;
        };
        if configured.contains_key(name) {
            out.notes.push(format!(
                "ignored {name}: the image's env sets it, and a hook cannot change it"
            ));
            continue;
        }
        bytes += name.len() + 1 + value.len();
        out.vars.insert(name.to_string(), value.to_string());
    }
    if out.vars.len() > MAX_EXPORTED_VARS {
        return Err(format!(
            "before_start exported {} variables, more than the {MAX_EXPORTED_VARS} carried on to the entrypoint",
            out.vars.len()
        ));
    }
    if bytes > MAX_EXPORTED_BYTES {
        return Err(format!(
            "before_start exported {bytes} bytes of variables, more than the {MAX_EXPORTED_BYTES} carried on to the entrypoint; keep large data in a file and export its path"
        ));
    }
    Ok(out)
}

/// A name for a note: never a value, and short, since junk may be long.
fn shown(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_new_and_changed_variables_are_exported() {
        let given = map(&[("PATH", "/bin"), ("HOME", "/root"), ("TOKEN", "t")]);
        let configured = map(&[("TOKEN", "t")]);
        let listing = b"PATH=/opt/bin:/bin\0HOME=/root\0TOKEN=t\0NEW=a=b\nc\0EMPTY=\0PWD=/app\0SHLVL=1\0_=/bin/sh\0";
        let got = exports(listing, &given, &configured).unwrap();
        assert_eq!(
            got.vars,
            map(&[("PATH", "/opt/bin:/bin"), ("NEW", "a=b\nc"), ("EMPTY", "")])
        );
        assert!(got.notes.is_empty(), "{:?}", got.notes);
    }

    #[test]
    fn an_unchanged_odd_name_from_the_host_is_no_export_and_no_note() {
        let given = map(&[("ODD-NAME", "1")]);
        let got = exports(b"ODD-NAME=1\0", &given, &given).unwrap();
        assert_eq!(got, Exports::default());
    }

    #[test]
    fn configured_variables_cannot_be_replaced() {
        let given = map(&[("TOKEN", "t")]);
        let got = exports(b"TOKEN=forged\0", &given, &given).unwrap();
        assert!(got.vars.is_empty());
        assert_eq!(
            got.notes,
            ["ignored TOKEN: the image's env sets it, and a hook cannot change it"]
        );
    }

    #[test]
    fn bad_names_and_values_are_ignored_with_a_note() {
        let listing = b"BASH_FUNC_f%%=() { :; }\x001X=1\0=v\0NOEQ\0BIN=\xff\0\xffN=1\0OK_1=1\0";
        let got = exports(listing, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(got.vars, map(&[("OK_1", "1")]));
        assert_eq!(got.notes.len(), 6, "{:?}", got.notes);
        assert!(got.notes[0].contains("BASH_FUNC_f%%"), "{:?}", got.notes);
        assert!(got.notes[4].contains("BIN"), "{:?}", got.notes);
    }

    #[test]
    fn too_many_or_too_large_exports_are_refused() {
        let many: Vec<u8> = (0..=MAX_EXPORTED_VARS)
            .flat_map(|i| format!("V{i}=x\0").into_bytes())
            .collect();
        let err = exports(&many, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert!(err.contains("1025 variables"), "{err}");

        let at_limit = format!("B={}\0", "x".repeat(MAX_EXPORTED_BYTES - 2));
        exports(at_limit.as_bytes(), &BTreeMap::new(), &BTreeMap::new()).unwrap();
        let over = format!("B={}\0", "x".repeat(MAX_EXPORTED_BYTES - 1));
        let err = exports(over.as_bytes(), &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert!(err.contains("export its path"), "{err}");
    }

    #[test]
    fn the_wrapper_is_valid_shell() {
        let checked = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", &wrapper("/usr/bin/env")])
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }

    #[test]
    fn wrapper_quotes_the_env_path() {
        assert!(wrapper("/usr/bin/env").contains("'/usr/bin/env' -0 >&3"));
        assert!(wrapper("/o'dd/env").contains(r"'/o'\''dd/env' -0 >&3"));
    }
}
