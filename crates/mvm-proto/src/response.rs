//! What the agent sends back for a request: zero or more streamed events
//! (`Stdout`, `Stderr`), then exactly one final response.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Hello;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Pong,
    Hello(Hello),
    /// The request was carried out and has nothing else to report.
    Ok,
    /// A chunk of an exec'd command's standard output, as it arrived.
    Stdout {
        #[serde(with = "crate::base64_bytes")]
        data: Vec<u8>,
    },
    /// A chunk of an exec'd command's standard error, as it arrived.
    Stderr {
        #[serde(with = "crate::base64_bytes")]
        data: Vec<u8>,
    },
    Exit(ProcessExit),
    FileData {
        #[serde(with = "crate::base64_bytes")]
        data: Vec<u8>,
    },
    Stat(FileStat),
    Listing {
        entries: Vec<DirEntry>,
    },
    /// The function returned; `value` is its JSON result.
    Value {
        value: Value,
    },
    /// The function raised or its result could not be returned.
    FunctionError(FunctionError),
    HookResult(HookOutcome),
    ServiceStarted {
        entrypoint: String,
        pid: u32,
    },
    /// The agent could not carry out the request.
    Error(AgentError),
}

impl Response {
    /// Whether this ends the request; streamed chunks do not.
    pub fn is_final(&self) -> bool {
        !matches!(self, Response::Stdout { .. } | Response::Stderr { .. })
    }

    /// The response's `type` tag, for messages about it.
    pub fn name(&self) -> &'static str {
        match self {
            Response::Pong => "pong",
            Response::Hello(_) => "hello",
            Response::Ok => "ok",
            Response::Stdout { .. } => "stdout",
            Response::Stderr { .. } => "stderr",
            Response::Exit(_) => "exit",
            Response::FileData { .. } => "file_data",
            Response::Stat(_) => "stat",
            Response::Listing { .. } => "listing",
            Response::Value { .. } => "value",
            Response::FunctionError(_) => "function_error",
            Response::HookResult(_) => "hook_result",
            Response::ServiceStarted { .. } => "service_started",
            Response::Error(_) => "error",
        }
    }
}

/// How a process ended: `code` when it exited, `signal` when a signal
/// killed it; `timed_out` when the agent killed it for running too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
}

impl ProcessExit {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.timed_out, self.code, self.signal) {
            (true, _, _) => f.write_str("timed out and was killed"),
            (false, Some(code), _) => write!(f, "exited with code {code}"),
            (false, None, Some(signal)) => write!(f, "was killed by signal {signal}"),
            (false, None, None) => f.write_str("ended without a status"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits (e.g. 0o755), without the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_unix_ms: i64,
    /// Where a symlink points; `None` for other kinds.
    #[serde(default)]
    pub link_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
}

/// An exception from user code, as the runner reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionError {
    /// The exception class (`ValueError`, `TypeError`), or one of the
    /// runner's own kinds: `ResultNotSerializable`, `FunctionNotFound`,
    /// `ModuleNotFound`, `TypeScriptUnsupported`.
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub traceback: Option<String>,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookOutcome {
    /// `None` when the image has no script for the phase, so nothing ran.
    pub exit: Option<ProcessExit>,
    /// The end of the script's combined stdout and stderr.
    pub output_tail: String,
}

impl HookOutcome {
    /// A missing script counts as success.
    pub fn success(&self) -> bool {
        self.exit.is_none_or(|e| e.success())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

impl std::error::Error for AgentError {}

/// Why the agent refused or failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The frame was not a request this agent understands.
    InvalidRequest,
    NotFound,
    PermissionDenied,
    /// A file or result exceeds a protocol limit.
    TooLarge,
    /// Any other I/O failure in the guest.
    Io,
    /// The program could not be started.
    SpawnFailed,
    /// No entrypoint of that name in `/etc/mvm/launch.json`.
    NoSuchEntrypoint,
    /// The entrypoint exists but is of the wrong kind for the request
    /// (invoking a command, or serving a function).
    WrongEntrypointKind,
    /// The language runner could not start (interpreter missing, or the
    /// runner failed before it became ready).
    RunnerUnavailable,
    /// The runner process died while handling the request; it is restarted
    /// on the next invoke.
    RunnerCrashed,
    /// The request ran past its `timeout_ms`.
    TimedOut,
    /// The agent knows the request but cannot do it in this mode.
    Unsupported,
    /// The agent is powering off and takes no new work.
    ShuttingDown,
    /// A kind added by a newer agent.
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Io => "io",
            ErrorKind::SpawnFailed => "spawn_failed",
            ErrorKind::NoSuchEntrypoint => "no_such_entrypoint",
            ErrorKind::WrongEntrypointKind => "wrong_entrypoint_kind",
            ErrorKind::RunnerUnavailable => "runner_unavailable",
            ErrorKind::RunnerCrashed => "runner_crashed",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::Unknown => "unknown",
        }
    }
}
