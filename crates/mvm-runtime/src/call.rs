//! `mvmctl invoke` and `mvmctl exec`: requests sent to a running instance's
//! supervisor over `control.sock`.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

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
    let request = Request::Exec {
        argv,
        env: Default::default(),
        timeout_ms: timeout.map(|t| t.as_millis() as u64),
    };
    let mut stream = open(home, name, &request, "run commands")?;
    loop {
        match next_event(&mut stream, name, "run the command")? {
            // A closed local stdout (e.g. `| head`) must not stop us from
            // reporting the command's exit status.
            Event::Stdout { data: Bytes(b) } => {
                let _ = stdout.write_all(&b).and_then(|_| stdout.flush());
            }
            Event::Stderr { data: Bytes(b) } => {
                let _ = stderr.write_all(&b).and_then(|_| stderr.flush());
            }
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
