//! `mvmctl secret`: the host secret store under `$MVM_HOME/secrets`
//! (mvm-secrets). Nothing here prints a value: not on success, not in an
//! error. Values are read in one place, [`read_value`].

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use mvm_secrets::{MAX_VALUE, SecretError, Store};
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Store a secret. The value comes from stdin (prompted for without
    /// echo on a terminal; one trailing newline is dropped), or from
    /// --from-env / --from-file. Setting an existing name replaces it.
    Set {
        /// 1-128 of a-z, 0-9, '.', '_' and '-', starting with a letter or
        /// digit: the name `mvm.secret("NAME")` refers to.
        name: String,
        /// Take the value from this environment variable, exactly as set.
        #[arg(long, value_name = "VAR", conflicts_with = "from_file")]
        from_env: Option<String>,
        /// Take the value from this file (one trailing newline is dropped).
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
    },
    /// List stored secrets: name, when set, when last used. Never values.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a stored secret.
    Rm {
        /// The secret to delete.
        name: String,
    },
}

pub fn run(cmd: SecretCommand) -> anyhow::Result<i32> {
    let store = Store::open(&mvm_runtime::home::mvm_home())?;
    match cmd {
        SecretCommand::Set {
            name,
            from_env,
            from_file,
        } => set(&store, &name, from_env.as_deref(), from_file.as_deref()),
        SecretCommand::List { json } => list(&store, json),
        SecretCommand::Rm { name } => rm(&store, &name),
    }
}

/// Where a value comes from, as a person would name it in a message.
enum Source<'a> {
    Env(&'a str),
    File(&'a Path),
    Stdin,
}

impl Source<'_> {
    fn describe(&self) -> String {
        match self {
            Source::Env(var) => format!("environment variable {var:?}"),
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "standard input".into(),
        }
    }
}

fn set(
    store: &Store,
    name: &str,
    from_env: Option<&str>,
    from_file: Option<&Path>,
) -> anyhow::Result<i32> {
    // Refuse a bad name before asking for a value.
    if !mvm_secrets::is_secret_name(name) {
        return Err(SecretError::InvalidName { name: name.into() }.into());
    }
    let source = match (from_env, from_file) {
        (Some(var), _) => Source::Env(var),
        (None, Some(path)) => Source::File(path),
        (None, None) => Source::Stdin,
    };
    let value = read_value(name, &source)?;
    if value.is_empty() {
        anyhow::bail!(
            "no value for secret {name:?}: {} is empty\n  hint: pipe the value in (`mvmctl secret set {name} < FILE`), or use --from-env VAR or --from-file PATH",
            source.describe()
        );
    }
    let replaced = store.set(name, &value)?;
    eprintln!(
        "{} secret {name} from {}\n  file: {} (mode 0600, encrypted with the store key {})",
        if replaced { "replaced" } else { "stored" },
        source.describe(),
        store.dir().join(format!("{name}.secret")).display(),
        store.key_file().display(),
    );
    Ok(0)
}

/// The one place a value is read. Stdin, terminal and file input lose one trailing
/// newline (`\n` or `\r\n`): `echo` and editors add one the secret does
/// not have. An environment variable is taken exactly.
fn read_value(name: &str, source: &Source) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let too_big = || {
        anyhow::anyhow!(
            "the value for secret {name:?} from {} is more than {MAX_VALUE} bytes, the limit\n  hint: store a token or key, not a file of data",
            source.describe()
        )
    };
    // Room for the limit, a CRLF, and one byte to tell "too big".
    let cap = MAX_VALUE as u64 + 3;
    // Sized once: a growing Vec would leave unzeroized copies behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(cap as usize));
    match source {
        Source::Env(var) => {
            use std::os::unix::ffi::OsStringExt;
            let Some(v) = std::env::var_os(var) else {
                anyhow::bail!(
                    "environment variable {var:?} is not set, so there is no value for secret {name:?}\n  hint: export it first, or leave out --from-env to type the value"
                );
            };
            return Ok(Zeroizing::new(v.into_vec()));
        }
        Source::File(path) => {
            let f = std::fs::File::open(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the value for secret {name:?} from {}: {e}\n  hint: check the path; the file must be readable by this user",
                    path.display()
                )
            })?;
            f.take(cap)
                .read_to_end(&mut buf)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        }
        Source::Stdin if std::io::stdin().is_terminal() => {
            let prompt = format!("value for secret {name} (not echoed): ");
            buf = prompt_without_echo(&prompt, cap)
                .map_err(|e| anyhow::anyhow!("reading the value from the terminal: {e}"))?;
        }
        Source::Stdin => {
            std::io::stdin()
                .lock()
                .take(cap)
                .read_to_end(&mut buf)
                .map_err(|e| anyhow::anyhow!("reading standard input: {e}"))?;
        }
    }
    // At the cap the true size is unknown: say "more than", not a length.
    if buf.len() as u64 == cap {
        return Err(too_big());
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(buf)
}

/// Echo goes off *before* the prompt is written, so nothing typed after
/// the prompt can appear (a prompt-then-disable order leaves a window a
/// paste can fall into). One line is read from /dev/tty, a byte at a time
/// so no buffer outside `Zeroizing` holds it; echo is restored on every
/// path but a fatal signal.
fn prompt_without_echo(prompt: &str, cap: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::os::fd::AsRawFd;

    struct Restore(i32, libc::termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: fd is open for the guard's lifetime; termios is a copy.
            unsafe { libc::tcsetattr(self.0, libc::TCSANOW, &self.1) };
        }
    }

    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for an open fd.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above, with a termios derived from the current one.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _restore = Restore(fd, old);
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut line = Zeroizing::new(Vec::with_capacity(cap as usize));
    let mut byte = [0u8; 1];
    while (line.len() as u64) < cap {
        match tty.read(&mut byte)? {
            0 => break,
            _ => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
        }
    }
    Ok(line)
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    created: String,
    last_used: Option<String>,
}

fn stamp(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| "?".into())
}

fn list(store: &Store, json: bool) -> anyhow::Result<i32> {
    let rows: Vec<Row> = store
        .list()?
        .into_iter()
        .map(|m| Row {
            name: m.name,
            created: stamp(m.created),
            last_used: m.last_used.map(stamp),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!(
            "no secrets in {}\n  hint: `mvmctl secret set NAME` stores one",
            store.dir().display()
        );
        return Ok(0);
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    let c = rows
        .iter()
        .map(|r| r.created.len())
        .max()
        .unwrap_or(0)
        .max(7);
    writeln!(out, "{:<w$}  {:<c$}  LAST USED", "NAME", "CREATED")?;
    for r in &rows {
        let used = r.last_used.as_deref().unwrap_or("never");
        writeln!(out, "{:<w$}  {:<c$}  {used}", r.name, r.created)?;
    }
    Ok(0)
}

fn rm(store: &Store, name: &str) -> anyhow::Result<i32> {
    match store.remove(name) {
        Ok(()) => {
            eprintln!("removed secret {name}");
            Ok(0)
        }
        Err(SecretError::NotFound { path, .. }) => anyhow::bail!(
            "no secret {name:?} to remove: {} does not exist\n  hint: `mvmctl secret list` shows the stored names",
            path.display()
        ),
        Err(e) => Err(e.into()),
    }
}
