//! Reaching the guest agent's channel: the unix socket the VMM listens on.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::{VmProcess, VmSpec};

/// How often to retry while the VMM is still creating its socket.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How much of the VMM log to quote when it died.
const LOG_TAIL_BYTES: u64 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the VM exited ({status}) before its agent socket {socket} accepted a connection; VMM log tail:\n{log_tail}"
    )]
    VmExited {
        status: ExitStatus,
        socket: PathBuf,
        log_tail: String,
    },
    #[error("the agent socket {socket} did not accept a connection within {timeout:?}; see {log}")]
    Timeout {
        socket: PathBuf,
        timeout: Duration,
        log: PathBuf,
    },
    #[error("checking on the VM process: {0}")]
    Process(std::io::Error),
}

/// Connects to `spec.agent_socket`, waiting up to `timeout` for the VMM to
/// create it, and failing early with the VMM's own words if it exits.
pub fn connect_agent(
    process: &mut dyn VmProcess,
    spec: &VmSpec,
    timeout: Duration,
) -> Result<UnixStream, ConnectError> {
    let started = Instant::now();
    loop {
        if let Ok(stream) = UnixStream::connect(&spec.agent_socket) {
            return Ok(stream);
        }
        if let Some(status) = process.try_wait().map_err(ConnectError::Process)? {
            return Err(ConnectError::VmExited {
                status,
                socket: spec.agent_socket.clone(),
                log_tail: log_tail(&spec.vmm_log),
            });
        }
        if started.elapsed() >= timeout {
            return Err(ConnectError::Timeout {
                socket: spec.agent_socket.clone(),
                timeout,
                log: spec.vmm_log.clone(),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The end of a log file, or a note saying why it could not be read.
pub fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        Ok(String::from_utf8_lossy(&tail).into_owned())
    };
    read().unwrap_or_else(|error| format!("(could not read {}: {error})", path.display()))
}
