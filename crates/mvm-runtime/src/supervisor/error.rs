//! Why an instance failed to start or a request could not be served.
//!
//! Causes are kept as `source` and also end the message: the supervisor
//! prints Display only (supervisor.log, the report `mvmctl up` reads, a
//! client's `Failed` event), never the chain, so nothing shows twice.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },

    #[error("cannot prepare the VM: {0}")]
    Machine(String),

    /// Saving or restoring a snapshot failed, or one was refused.
    #[error("snapshot: {0}")]
    Snapshot(String),

    /// The broker (mediated requests) could not be prepared: a secret
    /// gone from the store, an unreadable CA bundle.
    #[error("cannot prepare the host broker: {0}")]
    Broker(String),

    #[error("cannot prepare the VM: {0}")]
    Scratch(#[source] mvm_vmm::ScratchError),

    /// The spec was refused or the backend could not start.
    #[error("cannot prepare the VM: {0}")]
    Launch(#[source] mvm_vmm::LaunchError),

    #[error("QEMU exited {during} ({status}); the console log below shows how far the guest got")]
    QemuExited {
        during: &'static str,
        status: String,
    },

    #[error(
        "the guest agent did not say hello within {0:?}; the kernel or the agent is stuck (see the console log below), or the machine is too busy: raise --timeout-ready"
    )]
    NoHello(Duration),

    /// The agent's own refusal (it arrives as text) or a call that panicked.
    #[error("guest agent: {0}")]
    Agent(String),

    /// The connection to the agent failed.
    #[error("guest agent: {0}")]
    Client(#[source] mvm_proto::ClientError),

    #[error("the guest agent connection closed")]
    AgentGone,

    #[error("before_start failed with exit status {code}:\n{output}")]
    BeforeStartFailed { code: i32, output: String },

    #[error(
        "the after_start readiness probe did not pass within {timeout:?} (last exit status {code}){}",
        last_output(output)
    )]
    NotReady {
        timeout: Duration,
        code: i32,
        output: String,
    },

    #[error("start-up did not finish within {0:?} (--timeout-ready)")]
    Timeout(Duration),

    #[error("starting the `{name}` service failed: {source}")]
    Service {
        name: String,
        source: Box<SupervisorError>,
    },

    #[error("{0}")]
    State(#[from] crate::error::RuntimeError),

    /// Auditing is on for the instance and its trail cannot be written.
    #[error("not starting an unaudited instance: {0}")]
    Audit(#[from] crate::audit::AuditTrailError),
}

fn last_output(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{output}")
    }
}
