//! The control channel between CLI commands and an instance's supervisor:
//! one request per connection on `control.sock`, answered by a stream of
//! events ending in a final one. Frames are a 4-byte big-endian length and
//! a JSON body.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::error::RuntimeError;
use crate::state::Timings;

/// Exec output and invoke results are the biggest frames; 16 MiB bounds
/// what one misbehaving peer can make the other allocate.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

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
    },
    /// before_stop, guest power-off, then the supervisor exits.
    Stop { grace_ms: u64 },
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
    /// The supervisor could not carry out the request.
    Failed {
        message: String,
    },
}

/// Output bytes, carried as base64 so any byte sequence survives JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// What the supervisor tells `up` on its stdout pipe, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UpReport {
    Ready { timings: Timings },
    Failed { message: String, log_tail: String },
}

pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, RuntimeError> {
    let body = serde_json::to_vec(msg).expect("control messages serialize");
    if body.len() > MAX_FRAME_BYTES {
        return Err(RuntimeError::Control {
            detail: frame_too_large(body.len()),
        });
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Length prefix → body length, refusing frames over the cap.
pub fn body_len(prefix: [u8; 4]) -> Result<usize, RuntimeError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(RuntimeError::Control {
            detail: frame_too_large(len),
        });
    }
    Ok(len)
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RuntimeError> {
    serde_json::from_slice(body).map_err(|e| RuntimeError::Control {
        detail: format!("malformed message: {e}"),
    })
}

fn frame_too_large(len: usize) -> String {
    format!("frame of {len} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), RuntimeError> {
    w.write_all(&encode(msg)?)
        .map_err(|e| RuntimeError::Control {
            detail: format!("sending to the supervisor: {e}"),
        })
}

/// Reads one frame; `None` on a clean end of stream before a frame starts.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::Control {
        detail: format!("reading from the supervisor: {e}"),
    };
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io(e)),
    }
    let mut body = vec![0u8; body_len(prefix)?];
    r.read_exact(&mut body).map_err(io)?;
    decode(&body).map(Some)
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
        assert!(err.contains("exceeds"), "{err}");
        let mut truncated = &[0u8, 0, 0, 9, b'{'][..];
        assert!(read_frame::<Event>(&mut truncated).is_err());
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
