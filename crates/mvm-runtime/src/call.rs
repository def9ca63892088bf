//! `mvmctl invoke` and `mvmctl exec`: requests sent to a running instance's
//! supervisor over `control.sock`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use mvm_proto::{DirEntry, FileStat};
use serde_json::{Map, Value};

use crate::control::{self, Bytes, Event, Request};
use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::name::InstanceName;
use crate::state::{InstanceState, Observed};

/// The exit status `exec` reports when the command ran out of time, the
/// same as coreutils `timeout`.
pub const EXIT_TIMED_OUT: i32 = 124;

#[derive(Debug, Clone, PartialEq)]
pub enum InvokeOutcome {
    Value(Value),
    /// The function raised; kind is the exception class.
    Error {
        kind: String,
        message: String,
        traceback: Option<String>,
    },
}

/// How an exec'd command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
}

impl ExecStatus {
    /// The status `mvmctl exec` exits with: the command's own code,
    /// 128 + signal when it was killed, 124 when it timed out.
    pub fn exit_code(&self) -> i32 {
        if self.timed_out {
            EXIT_TIMED_OUT
        } else if let Some(code) = self.code {
            code
        } else {
            128 + self.signal.unwrap_or(0)
        }
    }
}

/// Opens the control channel of a running instance and sends `request`.
fn open(
    home: &Path,
    name: &InstanceName,
    request: &Request,
    action: &str,
) -> Result<UnixStream, RuntimeError> {
    let dir = InstanceDir::new(home, name.clone());
    if !dir.dir.is_dir() {
        return Err(RuntimeError::NoSuchInstance {
            name: name.to_string(),
        });
    }
    let st = InstanceState::load(&dir.state_json())?;
    let observed = st.observe();
    if observed != Observed::Running {
        let hint = match observed {
            Observed::Starting => "wait for `mvmctl up` to finish".to_string(),
            _ => format!(
                "`mvmctl logs {name}` shows what happened; `mvmctl down {name}` cleans it up"
            ),
        };
        return Err(RuntimeError::NotRunning {
            name: name.to_string(),
            status: observed.as_str().to_string(),
            action: action.to_string(),
            hint,
        });
    }
    let supervisor_err = |detail: String| RuntimeError::Supervisor {
        name: name.to_string(),
        detail,
    };
    let mut stream = control::connect(&dir.control_sock())
        .map_err(|e| supervisor_err(format!("connecting: {e}")))?;
    control::write_frame(&mut stream, request).map_err(|e| supervisor_err(e.to_string()))?;
    Ok(stream)
}

/// The next event; `Failed` (the guest could not carry out the request)
/// becomes an error naming `action`.
fn next_event(
    stream: &mut UnixStream,
    name: &InstanceName,
    action: &str,
) -> Result<Event, RuntimeError> {
    let supervisor_err = |detail: String| RuntimeError::Supervisor {
        name: name.to_string(),
        detail,
    };
    match control::read_frame::<Event>(stream) {
        Ok(Some(Event::Failed { message })) => Err(RuntimeError::Guest {
            name: name.to_string(),
            action: action.to_string(),
            message,
        }),
        Ok(Some(ev)) => Ok(ev),
        Ok(None) => Err(supervisor_err(
            "the supervisor closed the connection without an answer".into(),
        )),
        Err(e) => Err(supervisor_err(e.to_string())),
    }
}

pub fn invoke(
    home: &Path,
    name: &InstanceName,
    entrypoint: Option<String>,
    args: Map<String, Value>,
) -> Result<InvokeOutcome, RuntimeError> {
    let mut stream = open(
        home,
        name,
        &Request::Invoke { entrypoint, args },
        "be invoked",
    )?;
    match next_event(&mut stream, name, "be invoked")? {
        Event::InvokeResult { value } => Ok(InvokeOutcome::Value(value)),
        Event::InvokeError {
            kind,
            message,
            traceback,
        } => Ok(InvokeOutcome::Error {
            kind,
            message,
            traceback,
        }),
        other => Err(RuntimeError::Supervisor {
            name: name.to_string(),
            detail: format!("unexpected answer {other:?}"),
        }),
    }
}

/// One round trip through the supervisor to the guest agent and back.
pub fn ping(home: &Path, name: &InstanceName) -> Result<(), RuntimeError> {
    let mut stream = open(home, name, &Request::Ping {}, "be pinged")?;
    match next_event(&mut stream, name, "be pinged")? {
        Event::Pong => Ok(()),
        other => Err(unexpected(name, other)),
    }
}

/// Runs `argv` in the guest, copying its output to `stdout`/`stderr` as it
/// arrives.
pub fn exec(
    home: &Path,
    name: &InstanceName,
    argv: Vec<String>,
    timeout: Option<Duration>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<ExecStatus, RuntimeError> {
    let command = Command {
        timeout,
        ..Command::new(argv)
    };
    run(home, name, command, &mut |out, b| {
        // A closed local stdout (e.g. `| head`) must not stop us from
        // reporting the command's exit status.
        let w: &mut dyn Write = match out {
            Output::Stdout => &mut *stdout,
            Output::Stderr => &mut *stderr,
        };
        let _ = w.write_all(b).and_then(|_| w.flush());
    })
}

/// A command to run in the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    /// Added to the instance's environment.
    pub env: BTreeMap<String, String>,
    /// `None`: `/app` (or `/`).
    pub cwd: Option<String>,
    pub stdin: Vec<u8>,
    /// On expiry the command's whole process group is killed.
    pub timeout: Option<Duration>,
}

impl Command {
    pub fn new(argv: Vec<String>) -> Command {
        Command {
            argv,
            ..Command::default()
        }
    }
}

/// Which of a command's streams a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

/// Runs `command` in the guest, handing its output to `on_output` chunk by
/// chunk as it arrives, in order.
pub fn run(
    home: &Path,
    name: &InstanceName,
    command: Command,
    on_output: &mut dyn FnMut(Output, &[u8]),
) -> Result<ExecStatus, RuntimeError> {
    let request = Request::Exec {
        argv: command.argv,
        env: command.env,
        timeout_ms: command.timeout.map(|t| t.as_millis() as u64),
        cwd: command.cwd,
        stdin: Bytes(command.stdin),
    };
    let mut stream = open(home, name, &request, "run commands")?;
    loop {
        match next_event(&mut stream, name, "run the command")? {
            Event::Stdout { data: Bytes(b) } => on_output(Output::Stdout, &b),
            Event::Stderr { data: Bytes(b) } => on_output(Output::Stderr, &b),
            Event::Exit {
                code,
                signal,
                timed_out,
            } => {
                return Ok(ExecStatus {
                    code,
                    signal,
                    timed_out,
                });
            }
            other => {
                return Err(RuntimeError::Supervisor {
                    name: name.to_string(),
                    detail: format!("unexpected answer {other:?}"),
                });
            }
        }
    }
}

/// One file request and its single answer; a refusal by the guest is
/// [`RuntimeError::GuestFile`].
fn file_request(
    home: &Path,
    name: &InstanceName,
    request: &Request,
) -> Result<Event, RuntimeError> {
    let mut stream = open(home, name, request, "use files")?;
    match next_event(&mut stream, name, "use files")? {
        Event::FileError { kind, message } => Err(RuntimeError::GuestFile {
            name: name.to_string(),
            kind,
            message,
        }),
        ev => Ok(ev),
    }
}

fn unexpected(name: &InstanceName, ev: Event) -> RuntimeError {
    RuntimeError::Supervisor {
        name: name.to_string(),
        detail: format!("unexpected answer {ev:?}"),
    }
}

/// Writes `data` to `path` in the guest (parents created). Without
/// `append` the file is replaced atomically. One request carries at most
/// [`FILE_CHUNK_BYTES`]; larger files are written in appended chunks.
pub fn write_file(
    home: &Path,
    name: &InstanceName,
    path: &str,
    data: Vec<u8>,
    mode: u32,
    append: bool,
) -> Result<(), RuntimeError> {
    let request = Request::FileWrite {
        path: path.to_string(),
        data: Bytes(data),
        mode,
        append,
    };
    match file_request(home, name, &request)? {
        Event::Done => Ok(()),
        ev => Err(unexpected(name, ev)),
    }
}

/// The most bytes one `write_file` carries: base64 makes it 4/3 larger,
/// well under the control channel's 16 MiB frame.
pub const FILE_CHUNK_BYTES: usize = 4 * 1024 * 1024;

pub fn stat(home: &Path, name: &InstanceName, path: &str) -> Result<FileStat, RuntimeError> {
    let request = Request::Stat {
        path: path.to_string(),
    };
    match file_request(home, name, &request)? {
        Event::Stat { stat } => Ok(stat),
        ev => Err(unexpected(name, ev)),
    }
}

pub fn list(home: &Path, name: &InstanceName, path: &str) -> Result<Vec<DirEntry>, RuntimeError> {
    let request = Request::List {
        path: path.to_string(),
    };
    match file_request(home, name, &request)? {
        Event::Listing { entries } => Ok(entries),
        ev => Err(unexpected(name, ev)),
    }
}

/// Runs a short guest command (`mv`, `rm`, `mkdir`) that must succeed;
/// its stderr is the error.
pub fn guest_tool(home: &Path, name: &InstanceName, argv: &[&str]) -> Result<(), RuntimeError> {
    let mut stderr = Vec::new();
    // By absolute path: the guest's PATH starts with the workload's own
    // bin directories, whose `mv` could be anything.
    let program = format!("/bin/{}", argv[0]);
    let argv: Vec<&str> = std::iter::once(program.as_str())
        .chain(argv[1..].iter().copied())
        .collect();
    let argv = &argv[..];
    let command = Command {
        timeout: Some(Duration::from_secs(60)),
        ..Command::new(argv.iter().map(|s| s.to_string()).collect())
    };
    let status = run(home, name, command, &mut |out, b| {
        if out == Output::Stderr {
            keep_some(&mut stderr, b);
        }
    })?;
    if status.exit_code() != 0 {
        let text = String::from_utf8_lossy(&stderr);
        return Err(RuntimeError::GuestFile {
            name: name.to_string(),
            kind: tool_error_kind(&text).into(),
            message: format!("`{}` in the guest failed: {}", argv.join(" "), text.trim()),
        });
    }
    Ok(())
}

/// Streams `src` into the guest file `path` (parents created): written in
/// [`FILE_CHUNK_BYTES`] pieces to a temporary name beside it, then renamed
/// over it, so a reader in the guest never sees half a file. Returns the
/// bytes written; on failure the temporary file is removed.
pub fn upload(
    home: &Path,
    name: &InstanceName,
    path: &str,
    mode: u32,
    src: &mut dyn std::io::Read,
) -> Result<u64, RuntimeError> {
    let (dir, file) = path
        .rsplit_once('/')
        .ok_or_else(|| RuntimeError::BadInput {
            detail: format!("`{path}` is not an absolute guest path"),
            hint: "e.g. /app/data.csv".into(),
        })?;
    if file.is_empty() {
        return Err(RuntimeError::BadInput {
            detail: format!("`{path}` names a directory"),
            hint: "give the file's path".into(),
        });
    }
    let temp = format!("{dir}/.{file}.mvm-upload-{:08x}", rand::random::<u32>());
    let mut size = 0u64;
    let mut first = true;
    let result = (|| {
        loop {
            let mut chunk = Vec::with_capacity(FILE_CHUNK_BYTES);
            let n = src
                .take(FILE_CHUNK_BYTES as u64)
                .read_to_end(&mut chunk)
                .map_err(|source| RuntimeError::Io {
                    what: format!("reading what is copied to {path}"),
                    source,
                })?;
            write_file(home, name, &temp, chunk, mode, !first)?;
            first = false;
            size += n as u64;
            // Short read: the end (an empty first chunk still creates the file).
            if n < FILE_CHUNK_BYTES {
                break;
            }
        }
        guest_tool(home, name, &["mv", "-f", "--", &temp, path])
    })();
    if let Err(e) = result {
        if !first {
            let _ = guest_tool(home, name, &["rm", "-f", "--", &temp]);
        }
        return Err(e);
    }
    Ok(size)
}

/// Guest error text kept for a message: what a guest tool writes to
/// stderr is the guest's, and may be endless.
const STDERR_KEPT: usize = 64 * 1024;

fn keep_some(buf: &mut Vec<u8>, b: &[u8]) {
    let room = STDERR_KEPT.saturating_sub(buf.len());
    buf.extend_from_slice(&b[..b.len().min(room)]);
}

/// The error kind a coreutils message means (`not_found`, ...), as the
/// agent's own file requests report them.
fn tool_error_kind(stderr: &str) -> &'static str {
    if stderr.contains("No such file or directory") {
        "not_found"
    } else if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
        "permission_denied"
    } else if stderr.contains("File exists") || stderr.contains("Not a directory") {
        "exists"
    } else {
        "io"
    }
}

/// Streams the guest file `path` into `dst`; returns the bytes copied.
/// Only a regular file is read, and only as many bytes as it held when
/// this started (a guest file that is `/dev/zero`, a FIFO or still
/// growing cannot make this endless).
pub fn download(
    home: &Path,
    name: &InstanceName,
    path: &str,
    dst: &mut dyn Write,
) -> Result<u64, RuntimeError> {
    let st = stat(home, name, path)?;
    if st.kind != mvm_proto::FileKind::File {
        return Err(RuntimeError::GuestFile {
            name: name.to_string(),
            kind: "invalid_request".into(),
            message: format!("{path} is not a regular file (it is a {:?})", st.kind).to_lowercase(),
        });
    }
    let mut stderr = Vec::new();
    let mut size = 0u64;
    let mut failed: Option<std::io::Error> = None;
    let command = Command::new(vec![
        "/bin/head".into(),
        "-c".into(),
        st.size.to_string(),
        "--".into(),
        path.to_string(),
    ]);
    let status = run(home, name, command, &mut |out, b| match out {
        Output::Stdout if failed.is_none() => match dst.write_all(b) {
            Ok(()) => size += b.len() as u64,
            Err(e) => failed = Some(e),
        },
        Output::Stdout => {}
        Output::Stderr => keep_some(&mut stderr, b),
    })?;
    if let Some(source) = failed {
        return Err(RuntimeError::Io {
            what: format!("writing what is copied from {path}"),
            source,
        });
    }
    if status.exit_code() != 0 || size != st.size {
        let text = String::from_utf8_lossy(&stderr);
        return Err(RuntimeError::GuestFile {
            name: name.to_string(),
            kind: tool_error_kind(&text).into(),
            message: format!(
                "reading {path} in the guest failed after {size} of {} bytes: {}",
                st.size,
                text.trim()
            ),
        });
    }
    Ok(size)
}

/// Restarts the instance's lease: it now expires `timeout` from now
/// (returned, in ms since the epoch).
pub fn renew(home: &Path, name: &InstanceName, timeout: Duration) -> Result<u64, RuntimeError> {
    let request = Request::Renew {
        timeout_ms: timeout.as_millis() as u64,
    };
    let mut stream = open(home, name, &request, "renew its timeout")?;
    match next_event(&mut stream, name, "renew its timeout")? {
        Event::Renewed { expires_unix_ms } => Ok(expires_unix_ms),
        ev => Err(unexpected(name, ev)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_shell_conventions() {
        let s = |code, signal, timed_out| {
            ExecStatus {
                code,
                signal,
                timed_out,
            }
            .exit_code()
        };
        assert_eq!(s(Some(0), None, false), 0);
        assert_eq!(s(Some(3), None, false), 3);
        assert_eq!(s(None, Some(9), false), 137);
        assert_eq!(s(None, Some(9), true), 124);
    }
}
