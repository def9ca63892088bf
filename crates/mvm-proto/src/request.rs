//! What the host asks of the agent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest file `FileRead` returns. Base64 makes it 4/3 larger on the wire,
/// which must stay under [`crate::MAX_FRAME_BYTES`]; bigger files stream
/// through `Exec` (`cat`) instead.
pub const FILE_READ_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Mode given to files written without an explicit one.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Liveness check; answered with `Pong`.
    Ping,
    /// Asks for the hello again (answered with `Hello`), for a host that
    /// attaches to a channel the agent already greeted on, such as a VM
    /// restored from a snapshot.
    Hello,
    /// Replaces the environment given to hooks, exec'd commands, function
    /// runners and services: literal values and opaque secret tokens.
    /// Warm runners are restarted so they see it, except one that has not
    /// served a call yet (prewarmed), which is handed the new environment
    /// in place unless interpreter start-up settings changed.
    Configure { env: BTreeMap<String, String> },
    /// Runs a command; answered with `Stdout`/`Stderr` chunks as they arrive,
    /// then `Exit`.
    Exec(ExecRequest),
    /// Writes a file, creating parent directories. Without `append` the file
    /// is replaced atomically (written beside it, then renamed).
    FileWrite {
        path: String,
        #[serde(with = "crate::base64_bytes")]
        data: Vec<u8>,
        #[serde(default = "default_mode")]
        mode: u32,
        #[serde(default)]
        append: bool,
    },
    /// Reads a whole file of at most [`FILE_READ_MAX_BYTES`].
    FileRead { path: String },
    /// Describes a path without following a final symlink.
    Stat { path: String },
    /// Lists a directory, sorted by name.
    List { path: String },
    /// Calls a function entrypoint with keyword arguments; `entrypoint: None`
    /// selects the primary one. Answered with `Value` or `FunctionError`.
    Invoke {
        #[serde(default)]
        entrypoint: Option<String>,
        #[serde(default)]
        args: Map<String, Value>,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Runs `/etc/mvm/hooks/<phase>.sh`; answered with `HookResult`.
    RunHook {
        phase: HookPhase,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Starts a command entrypoint (`None`: the primary one) as a supervised
    /// service whose output goes to the instance log. Idempotent.
    StartService {
        #[serde(default)]
        entrypoint: Option<String>,
    },
    /// Sent after restoring a snapshot: the guest clock jumps to the host's
    /// time, `entropy` is credited to the kernel's pool and its CRNG
    /// reseeded, and warm Python runners reseed `random`, so restored
    /// copies of one snapshot neither share random state nor live in the
    /// past.
    Resume {
        now_unix_ms: u64,
        #[serde(with = "crate::base64_bytes")]
        entropy: Vec<u8>,
    },
    /// Starts the function runners of the image's function entrypoints now,
    /// before any user code is imported, so a snapshot taken afterwards
    /// holds warm interpreters. Answered with `Ok`.
    Prewarm,
    /// Answered with `Ok`, after which the agent sends nothing more until
    /// its next incoming request (or 30 s of guest time): the host saves
    /// the guest between whole frames even while commands stream output,
    /// and a restored copy's new connection starts on a frame boundary.
    Quiesce,
    /// Answered with `Ok`, after which the agent stops every process,
    /// unmounts and powers the VM off (in dev mode: exits).
    Shutdown { reason: String },
}

fn default_mode() -> u32 {
    DEFAULT_FILE_MODE
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program and arguments; the program is looked up on `PATH`.
    pub argv: Vec<String>,
    /// Added on top of the configured environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; `None` means `/app`, or `/` if there is no `/app`.
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default, with = "crate::base64_bytes")]
    pub stdin: Vec<u8>,
    /// On expiry the command's whole process group is killed with SIGKILL.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl ExecRequest {
    pub fn new<I, S>(argv: I) -> ExecRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            cwd: None,
            stdin: Vec::new(),
            timeout_ms: None,
        }
    }
}

/// Lifecycle hook phases (IR `Hooks`). `before_build` runs in the builder
/// VM; the others at every boot and shutdown of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    BeforeBuild,
    BeforeStart,
    AfterStart,
    BeforeStop,
}

impl HookPhase {
    pub const ALL: [HookPhase; 4] = [
        HookPhase::BeforeBuild,
        HookPhase::BeforeStart,
        HookPhase::AfterStart,
        HookPhase::BeforeStop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::BeforeBuild => "before_build",
            HookPhase::BeforeStart => "before_start",
            HookPhase::AfterStart => "after_start",
            HookPhase::BeforeStop => "before_stop",
        }
    }
}

impl fmt::Display for HookPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Request {
    /// The request's `type` tag, for messages about it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Hello => "hello",
            Request::Configure { .. } => "configure",
            Request::Exec(_) => "exec",
            Request::FileWrite { .. } => "file_write",
            Request::FileRead { .. } => "file_read",
            Request::Stat { .. } => "stat",
            Request::List { .. } => "list",
            Request::Invoke { .. } => "invoke",
            Request::RunHook { .. } => "run_hook",
            Request::StartService { .. } => "start_service",
            Request::Resume { .. } => "resume",
            Request::Prewarm => "prewarm",
            Request::Quiesce => "quiesce",
            Request::Shutdown { .. } => "shutdown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostFrame;
    use serde_json::json;

    #[test]
    fn prewarm_is_a_bare_tag_and_round_trips() {
        let frame = HostFrame {
            id: 5,
            request: Request::Prewarm,
        };
        let wire = serde_json::to_value(&frame).unwrap();
        assert_eq!(wire, json!({"id": 5, "request": {"type": "prewarm"}}));
        let back: HostFrame = serde_json::from_value(wire).unwrap();
        assert_eq!(back, frame);
        assert_eq!(Request::Prewarm.name(), "prewarm");
    }
}
