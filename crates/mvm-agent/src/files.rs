//! `FileWrite`, `FileRead`, `Stat` and `List`.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::UNIX_EPOCH;

use mvm_proto::{
    AgentError, DirEntry, ErrorKind, FILE_READ_MAX_BYTES, FileKind, FileStat, Response,
};

pub fn write(path: &str, data: &[u8], mode: u32, append: bool) -> Result<Response, AgentError> {
    let target = absolute(path)?;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| io_error(e, "create the parent directories of", path))?;
    }
    if append && is_fifo(&target) {
        return write_fifo(&target, data, path);
    }
    if append {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(mode)
            .open(target)
            .map_err(|e| io_error(e, "open", path))?;
        file.write_all(data)
            .map_err(|e| io_error(e, "append to", path))?;
    } else {
        // Written beside the target and renamed over it, so a reader never
        // sees half a file.
        let file_name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file");
        // Unique per write: concurrent writes to one target must not share it.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = target.with_file_name(format!(".{file_name}.mvm-write-{n}"));
        let result = fs::write(&temp, data)
            .and_then(|()| fs::set_permissions(&temp, fs::Permissions::from_mode(mode)))
            .and_then(|()| fs::rename(&temp, target));
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(io_error(e, "write", path));
        }
    }
    Ok(Response::Ok)
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// How long an append to a FIFO waits for its reader to make room.
const FIFO_WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Appends to a FIFO (a background command's stdin) without ever
/// blocking for good: no reader is an error at once, a reader that does
/// not read is one after [`FIFO_WRITE_LIMIT`].
fn write_fifo(target: &Path, data: &[u8], path: &str) -> Result<Response, AgentError> {
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(target)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                AgentError {
                    kind: ErrorKind::NotFound,
                    message: format!(
                        "nothing reads {path} any more (the command ended or closed its input)"
                    ),
                }
            } else {
                io_error(e, "open", path)
            }
        })?;
    let deadline = std::time::Instant::now() + FIFO_WRITE_LIMIT;
    let mut rest = data;
    while !rest.is_empty() {
        match file.write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    return Err(AgentError {
                        kind: ErrorKind::TimedOut,
                        message: format!(
                            "{path}: the command did not read its input for {FIFO_WRITE_LIMIT:?} ({} of {} bytes written)",
                            data.len() - rest.len(),
                            data.len()
                        ),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(io_error(e, "write to", path)),
        }
    }
    Ok(Response::Ok)
}

pub fn read(path: &str) -> Result<Response, AgentError> {
    let file = fs::File::open(absolute(path)?).map_err(|e| io_error(e, "open", path))?;
    let mut data = Vec::new();
    // One byte past the cap tells "too large" from "exactly the cap".
    file.take(FILE_READ_MAX_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| io_error(e, "read", path))?;
    if data.len() as u64 > FILE_READ_MAX_BYTES {
        return Err(AgentError {
            kind: ErrorKind::TooLarge,
            message: format!(
                "{path} is larger than {FILE_READ_MAX_BYTES} bytes, the most one read returns; stream it with exec (`cat`)"
            ),
        });
    }
    Ok(Response::FileData { data })
}

pub fn stat(path: &str) -> Result<Response, AgentError> {
    let target = absolute(path)?;
    let meta = fs::symlink_metadata(target).map_err(|e| io_error(e, "stat", path))?;
    let link_target = if meta.file_type().is_symlink() {
        fs::read_link(target)
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    } else {
        None
    };
    let mtime_unix_ms = meta
        .modified()
        .ok()
        .map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_millis() as i64,
            Err(before) => -(before.duration().as_millis() as i64),
        })
        .unwrap_or(0);
    Ok(Response::Stat(FileStat {
        kind: kind(&meta),
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime_unix_ms,
        link_target,
    }))
}

pub fn list(path: &str) -> Result<Response, AgentError> {
    let dir = fs::read_dir(absolute(path)?).map_err(|e| io_error(e, "list", path))?;
    let mut entries = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| io_error(e, "list", path))?;
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(|e| io_error(e, "stat an entry of", path))?;
        entries.push(DirEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind: kind(&meta),
            size: meta.len(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Response::Listing { entries })
}

fn kind(meta: &fs::Metadata) -> FileKind {
    let t = meta.file_type();
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    }
}

/// Paths are guest paths; a relative one would depend on the agent's cwd.
fn absolute(path: &str) -> Result<&Path, AgentError> {
    let p = Path::new(path);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(AgentError {
            kind: ErrorKind::InvalidRequest,
            message: format!("`{path}` is not an absolute path"),
        })
    }
}

pub fn io_error(e: io::Error, action: &str, path: &str) -> AgentError {
    let kind = match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Io,
    };
    AgentError {
        kind,
        message: format!("cannot {action} {path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// A background command's stdin: appending to its FIFO never hangs,
    /// whether nobody reads it or a reader takes the bytes.
    #[test]
    fn appending_to_a_fifo_fails_fast_without_a_reader_and_reaches_one() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdin");
        mkfifo(&fifo);
        let p = fifo.to_str().unwrap();
        let t = std::time::Instant::now();
        let e = write(p, b"x", 0o600, true).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert!(is_fifo(&fifo), "the FIFO was replaced by a file");

        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        // The reader opens the FIFO; retry until it has.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match write(p, b"hello", 0o600, true) {
                Ok(_) => break,
                Err(e) if e.kind == ErrorKind::NotFound && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(reader.join().unwrap(), b"hello");
    }
}
