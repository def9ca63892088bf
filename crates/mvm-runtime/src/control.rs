//! The control channel between CLI commands and an instance's supervisor:
//! one request per connection on `control.sock`, answered by a stream of
//! events ending in a final one. The framing is mvm-proto's
//! ([`mvm_proto::frame`]: a 4-byte big-endian length, a JSON body, the
//! same 16 MiB cap); this module keeps the messages and says what a
//! framing failure means on this channel.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use mvm_proto::FrameError;
use mvm_proto::frame;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::error::RuntimeError;
use crate::state::Timings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Call a function entrypoint (`None` = the primary).
    Invoke {
        entrypoint: Option<String>,
        args: Map<String, Value>,
    },
    /// Run a command in the guest, streaming its output.
    Exec {
        argv: Vec<String>,
        env: BTreeMap<String, String>,
        timeout_ms: Option<u64>,
        /// `None`: `/app` (or `/`).
        #[serde(default)]
        cwd: Option<String>,
        #[serde(default)]
        stdin: Bytes,
    },
    /// before_stop, guest power-off, then the supervisor exits.
    Stop { grace_ms: u64 },
    /// Save the guest to the instance's `paused/` and stop QEMU; the
    /// supervisor exits after answering.
    Pause {},
    /// Save the guest as the tagged snapshot `tag`; it keeps running.
    Snapshot { tag: String },
    /// Restart the instance's lease: it expires `timeout_ms` from now.
    Renew { timeout_ms: u64 },
    /// Write a file in the guest (parents created; replaced atomically
    /// unless `append`).
    FileWrite {
        path: String,
        data: Bytes,
        mode: u32,
        append: bool,
    },
    /// Describe a guest path (a final symlink is not followed).
    Stat { path: String },
    /// List a guest directory.
    List { path: String },
    /// One round trip to the guest agent and back, doing nothing: the
    /// channel's floor, which `mvmctl bench` measures invoke against.
    Ping {},
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    InvokeResult {
        value: Value,
    },
    /// The function raised: its exception, as the runner reported it.
    InvokeError {
        kind: String,
        message: String,
        traceback: Option<String>,
    },
    Stdout {
        data: Bytes,
    },
    Stderr {
        data: Bytes,
    },
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
    },
    /// The guest was stopped; `before_stop` is best-effort, its outcome is reported.
    Stopped {
        before_stop: String,
    },
    /// The guest is saved and nothing of the instance runs.
    Paused {
        /// Bytes the paused state takes on disk (memory state; the disk
        /// is the instance's own).
        bytes: u64,
        /// How long the guest was stopped before QEMU exited.
        stopped_ms: u64,
    },
    /// A snapshot was taken; the guest runs on.
    Snapshotted {
        tag: String,
        bytes: u64,
        /// How long the guest was stopped for it.
        stopped_ms: u64,
    },
    /// The lease now expires then.
    Renewed {
        expires_unix_ms: u64,
    },
    /// A file request was carried out.
    Done,
    /// The agent answered a `Ping`.
    Pong,
    Stat {
        stat: mvm_proto::FileStat,
    },
    Listing {
        entries: Vec<mvm_proto::DirEntry>,
    },
    /// The supervisor could not carry out the request.
    Failed {
        message: String,
    },
    /// The guest refused a file request: `not_found`, `permission_denied`,
    /// `too_large`, ... (mvm-proto's error kinds) and why.
    FileError {
        kind: String,
        message: String,
    },
}

/// Output bytes, carried as base64 (mvm-proto's encoding, as on the agent
/// channel) so any byte sequence survives JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bytes(#[serde(with = "mvm_proto::base64_bytes")] pub Vec<u8>);

/// What the supervisor tells `up` on its stdout pipe, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UpReport {
    Ready {
        timings: Timings,
        /// `boot`, `template`, `resume`, `snapshot TAG`, or why a
        /// template could not be used.
        #[serde(default)]
        started_by: Option<String>,
    },
    Failed {
        message: String,
        log_tail: String,
    },
}

/// A framing failure as this channel reports it; `doing` is what this side
/// was doing (e.g. "reading from the supervisor"), for I/O failures.
pub(crate) fn channel_error(doing: &str, e: FrameError) -> RuntimeError {
    let detail = match e {
        FrameError::TooLarge { len, max } => {
            format!("frame of {len} bytes exceeds the {max}-byte limit")
        }
        FrameError::InvalidJson(e) => format!("malformed message: {e}"),
        FrameError::Io(e) => format!("{doing}: {e}"),
        other => format!("{doing}: {other}"),
    };
    RuntimeError::Control { detail }
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), RuntimeError> {
    frame::write_frame(w, msg).map_err(|e| channel_error("sending to the supervisor", e))
}

/// Reads one frame; `None` on a clean end of stream before a frame starts.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, RuntimeError> {
    frame::read_frame(r).map_err(|e| channel_error("reading from the supervisor", e))
}

/// `sun_path` holds 108 bytes; stay clear of it with room for the NUL.
const SUN_PATH_SAFE: usize = 100;

/// A path to the same socket file that fits in `sun_path`: long paths go
/// through the directory's fd (`/proc/self/fd/N/name`), which the kernel
/// resolves like the original. The returned `File` must outlive its use.
fn short_socket_path(path: &Path) -> std::io::Result<(std::path::PathBuf, Option<std::fs::File>)> {
    if path.as_os_str().len() < SUN_PATH_SAFE {
        return Ok((path.to_path_buf(), None));
    }
    use std::os::fd::AsRawFd;
    let parent = path.parent().unwrap_or(Path::new("."));
    let dir = std::fs::File::open(parent)?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(path.file_name().unwrap_or_default());
    Ok((short, Some(dir)))
}

/// Connects to a unix socket, whatever the length of its path.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let (short, _dir) = short_socket_path(path)?;
    UnixStream::connect(short)
}

/// Binds a unix socket, whatever the length of its path.
pub fn bind(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let (short, _dir) = short_socket_path(path)?;
    std::os::unix::net::UnixListener::bind(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msgs = vec![
            Event::Stdout {
                data: Bytes(vec![0, 159, 255, b'\n']),
            },
            Event::Exit {
                code: Some(3),
                signal: None,
                timed_out: false,
            },
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write_frame(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        let back: Vec<Event> = std::iter::from_fn(|| read_frame(&mut r).unwrap()).collect();
        assert_eq!(back, msgs);
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut r = &(u32::MAX.to_be_bytes())[..];
        let err = read_frame::<Event>(&mut r).unwrap_err().to_string();
        assert_eq!(
            err,
            "control channel: frame of 4294967295 bytes exceeds the 16777216-byte limit"
        );
        let mut truncated = &[0u8, 0, 0, 9, b'{'][..];
        let err = read_frame::<Event>(&mut truncated).unwrap_err().to_string();
        assert!(
            err.starts_with("control channel: reading from the supervisor: truncated frame"),
            "{err}"
        );
        let mut garbage = &[0u8, 0, 0, 2, b'{', b'}'][..];
        let err = read_frame::<Event>(&mut garbage).unwrap_err().to_string();
        assert!(
            err.starts_with("control channel: malformed message: missing field `event`"),
            "{err}"
        );
    }

    /// The wire format is what it was before the framing was shared: a
    /// 4-byte big-endian length, then the JSON, bytes in standard base64.
    #[test]
    fn frames_are_byte_for_byte_the_old_format() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Event::Stdout {
                data: Bytes(vec![0, 159, 255, b'\n']),
            },
        )
        .unwrap();
        let body = br#"{"event":"stdout","data":"AJ//Cg=="}"#;
        assert_eq!(&buf[..4], &(body.len() as u32).to_be_bytes());
        assert_eq!(&buf[4..], body);

        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Stop { grace_ms: 5000 }).unwrap();
        assert_eq!(&buf[4..], br#"{"op":"stop","grace_ms":5000}"#);
    }

    /// A frame one side writes on a socket, the other reads, through the
    /// shared framing; a length prefix over the cap is refused before any
    /// body is read.
    #[test]
    fn the_two_sides_of_a_socket_agree() {
        let (mut cli, mut supervisor) = UnixStream::pair().unwrap();
        let request = Request::Exec {
            argv: vec!["echo".into(), "hi".into()],
            env: BTreeMap::from([("A".into(), "1".into())]),
            timeout_ms: Some(1000),
            cwd: Some("/tmp".into()),
            stdin: Bytes(b"in\x00put".to_vec()),
        };
        write_frame(&mut cli, &request).unwrap();
        let got: Request = read_frame(&mut supervisor).unwrap().unwrap();
        assert_eq!(got, request);

        let event = Event::Stderr {
            data: Bytes(b"oops\xff".to_vec()),
        };
        write_frame(&mut supervisor, &event).unwrap();
        assert_eq!(read_frame::<Event>(&mut cli).unwrap(), Some(event));

        // The oversized prefix is refused on its own: the frame behind it
        // is still there to read, so nothing was taken as its body.
        let over = (mvm_proto::MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
        supervisor.write_all(&over).unwrap();
        let after = Event::Stopped {
            before_stop: "before_stop ok".into(),
        };
        write_frame(&mut supervisor, &after).unwrap();
        let err = read_frame::<Event>(&mut cli).unwrap_err().to_string();
        assert_eq!(
            err,
            "control channel: frame of 16777217 bytes exceeds the 16777216-byte limit"
        );
        assert_eq!(read_frame::<Event>(&mut cli).unwrap(), Some(after));

        drop(supervisor);
        assert_eq!(read_frame::<Event>(&mut cli).unwrap(), None);
    }

    #[test]
    fn long_socket_paths_connect() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let sock = deep.join("control.sock");
        assert!(sock.as_os_str().len() > 108);
        let listener = bind(&sock).unwrap();
        assert!(sock.exists());
        let _client = connect(&sock).unwrap();
        listener.accept().unwrap();
    }
}
