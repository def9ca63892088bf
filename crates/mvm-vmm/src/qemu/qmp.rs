//! A small QMP client (QEMU's JSON control protocol) for what mvm needs of
//! a running VM: pausing, resuming, and saving its state to a file that
//! [`super::Qemu::restore`] boots from.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The names saved-state descriptors are given in QEMU (`getfd`).
const SNAPSHOT_FD: &str = "mvm-snapshot";
const INCOMING_FD: &str = "mvm-incoming";

/// How often migration progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("connecting to the QMP socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("QMP connection I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("QEMU closed the QMP connection")]
    Closed,
    #[error("QEMU sent something that is not QMP JSON: {0:?}")]
    Malformed(String),
    #[error("QEMU refused `{command}`: {description}")]
    Refused {
        command: String,
        description: String,
    },
    #[error("saving the VM state to {path} failed (migration status {status})")]
    SnapshotFailed { path: PathBuf, status: String },
    #[error("saving the VM state to {path} did not finish within {timeout:?}")]
    SnapshotTimeout { path: PathBuf, timeout: Duration },
    #[error("loading the saved VM state did not finish within {0:?}")]
    RestoreTimeout(Duration),
    #[error("loading the saved VM state left QEMU in state `{0}`; see the QEMU log")]
    RestoreFailed(String),
}

/// One QMP session on a VM's control socket.
#[derive(Debug)]
pub struct Qmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects, reads QEMU's greeting and enters command mode.
    pub fn connect(socket: &Path) -> Result<Qmp, QmpError> {
        let stream = UnixStream::connect(socket).map_err(|source| QmpError::Connect {
            path: socket.to_owned(),
            source,
        })?;
        let mut qmp = Qmp {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Malformed(greeting.to_string()));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs one command and returns its `return` value. Asynchronous events
    /// that arrive meanwhile are skipped.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, QmpError> {
        let mut line = json!({ "execute": command, "arguments": arguments }).to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        self.reply(command)
    }

    /// Hands QEMU an open file as `name` (`getfd`, the descriptor passed
    /// alongside with SCM_RIGHTS): migration then reads or writes exactly
    /// that file, never a path opened again.
    pub fn send_fd(&mut self, name: &str, fd: std::os::fd::RawFd) -> Result<(), QmpError> {
        use std::os::fd::AsRawFd;
        let mut line = json!({ "execute": "getfd", "arguments": { "fdname": name } }).to_string();
        line.push('\n');
        let iov = libc::iovec {
            iov_base: line.as_ptr() as *mut libc::c_void,
            iov_len: line.len(),
        };
        let fd_len = std::mem::size_of::<std::os::fd::RawFd>() as u32;
        // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic on a length.
        let (space, len) = unsafe { (libc::CMSG_SPACE(fd_len), libc::CMSG_LEN(fd_len)) };
        let mut control = vec![0u8; space as usize];
        // SAFETY: a zeroed msghdr is valid; the pointers set below outlive
        // the sendmsg call, and CMSG_FIRSTHDR of a buffer of CMSG_SPACE
        // bytes is non-null and holds one descriptor.
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &iov as *const libc::iovec as *mut libc::iovec;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = len as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut std::os::fd::RawFd, fd);
            libc::sendmsg(self.writer.as_raw_fd(), &msg, 0)
        };
        if sent < 0 {
            return Err(QmpError::Io(std::io::Error::last_os_error()));
        }
        if sent as usize != line.len() {
            return Err(QmpError::Io(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "the getfd command was cut short",
            )));
        }
        self.reply("getfd").map(drop)
    }

    fn reply(&mut self, command: &str) -> Result<Value, QmpError> {
        loop {
            let mut message = self.read_message()?;
            if let Some(value) = message.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = message.get("error") {
                let description = error["desc"]
                    .as_str()
                    .unwrap_or("no description")
                    .to_owned();
                return Err(QmpError::Refused {
                    command: command.to_owned(),
                    description,
                });
            }
        }
    }

    /// Pauses the vCPUs.
    pub fn stop(&mut self) -> Result<(), QmpError> {
        self.execute("stop", json!({})).map(drop)
    }

    /// Resumes the vCPUs.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.execute("cont", json!({})).map(drop)
    }

    /// `running`, `paused`, `postmigrate`, ... as QEMU names its run state.
    pub fn status(&mut self) -> Result<String, QmpError> {
        let status = self.execute("query-status", json!({}))?;
        Ok(status["status"].as_str().unwrap_or_default().to_owned())
    }

    /// Pauses the VM and writes its whole state (memory and devices, not
    /// disk contents) to `path`, a new file (0600). The VM stays paused:
    /// [`Qmp::cont`] resumes it, or the caller stops it. Disks must be kept
    /// unchanged for a restore.
    ///
    /// QEMU writes the file itself, through a descriptor passed to it, so
    /// `completed` means every byte is in the file (a helper process such
    /// as `exec:cat` can still hold some when QEMU reports it, and is
    /// killed when QEMU closes it). The file is synced before this returns.
    /// On failure the migration is cancelled and the VM left paused.
    pub fn snapshot(&mut self, path: &Path, timeout: Duration) -> Result<(), QmpError> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        self.stop()?;
        self.send_fd(SNAPSHOT_FD, file.as_raw_fd())?;
        self.execute("migrate", json!({ "uri": format!("fd:{SNAPSHOT_FD}") }))?;
        let started = Instant::now();
        let failed = loop {
            let progress = self.execute("query-migrate", json!({}))?;
            match progress["status"].as_str().unwrap_or_default() {
                "completed" => {
                    file.sync_all()?;
                    return Ok(());
                }
                status @ ("failed" | "cancelled") => {
                    break QmpError::SnapshotFailed {
                        path: path.to_owned(),
                        status: status.to_owned(),
                    };
                }
                _ if started.elapsed() > timeout => {
                    break QmpError::SnapshotTimeout {
                        path: path.to_owned(),
                        timeout,
                    };
                }
                _ => std::thread::sleep(POLL_INTERVAL),
            }
        };
        // A migration left running would finish later and park the VM.
        let _ = self.execute("migrate_cancel", json!({}));
        Err(failed)
    }

    /// Loads a saved state from `file` into a QEMU started with
    /// `-incoming defer`, then runs the vCPUs (see [`Qmp::finish_incoming`]).
    pub fn load(&mut self, file: &std::fs::File, timeout: Duration) -> Result<(), QmpError> {
        use std::os::fd::AsRawFd;
        self.send_fd(INCOMING_FD, file.as_raw_fd())?;
        self.execute(
            "migrate-incoming",
            json!({ "uri": format!("fd:{INCOMING_FD}") }),
        )?;
        self.finish_incoming(timeout)
    }

    /// Waits until QEMU started with `-incoming` has loaded the saved state,
    /// then runs the vCPUs. A snapshot is taken paused, and QEMU keeps a
    /// restored VM in the state it was saved in, so it must be continued.
    pub fn finish_incoming(&mut self, timeout: Duration) -> Result<(), QmpError> {
        let started = Instant::now();
        loop {
            match self.status()?.as_str() {
                "inmigrate" if started.elapsed() > timeout => {
                    return Err(QmpError::RestoreTimeout(timeout));
                }
                "inmigrate" => std::thread::sleep(POLL_INTERVAL),
                "running" => return Ok(()),
                "paused" => return self.cont(),
                other => return Err(QmpError::RestoreFailed(other.to_owned())),
            }
        }
    }

    /// Asks QEMU to exit now.
    pub fn quit(&mut self) -> Result<(), QmpError> {
        match self.execute("quit", json!({})) {
            // QEMU may close the socket before its reply is read.
            Err(QmpError::Closed) => Ok(()),
            other => other.map(drop),
        }
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(QmpError::Closed);
        }
        serde_json::from_str(&line).map_err(|_| QmpError::Malformed(line.trim_end().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real QEMU (no guest needed) answers the session's commands.
    #[test]
    fn a_real_qemu_is_paused_resumed_and_quit() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let mut qemu = std::process::Command::new(super::super::DEFAULT_QEMU)
            .args(["-M", "microvm", "-nodefaults", "-nographic", "-S", "-qmp"])
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .spawn()
            .unwrap();
        let mut qmp = loop {
            match Qmp::connect(&socket) {
                Ok(qmp) => break qmp,
                Err(QmpError::Connect { .. }) if qemu.try_wait().unwrap().is_none() => {
                    std::thread::sleep(POLL_INTERVAL)
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(qmp.status().unwrap(), "prelaunch");
        qmp.cont().unwrap();
        assert_eq!(qmp.status().unwrap(), "running");
        qmp.stop().unwrap();
        assert_eq!(qmp.status().unwrap(), "paused");
        assert!(matches!(
            qmp.execute("no-such-command", json!({})),
            Err(QmpError::Refused { .. })
        ));
        qmp.quit().unwrap();
        assert!(qemu.wait().unwrap().success());
    }
}
