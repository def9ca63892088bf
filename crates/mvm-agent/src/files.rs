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
