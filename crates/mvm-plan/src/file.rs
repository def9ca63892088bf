//! Reading the files this crate parses: a regular file named directly
//! (never through a symlink someone could have planted), size-capped.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::PlanError;

/// The bytes of `path`, which must be a regular file of at most `max` bytes.
pub(crate) fn read_regular(path: &Path, max: u64) -> Result<(File, Vec<u8>), PlanError> {
    let refuse = |detail: String, hint: &str| PlanError::File {
        path: path.to_path_buf(),
        detail,
        hint: hint.into(),
    };
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse(
                "is a symbolic link".into(),
                "pass the file itself, not a link to it",
            ));
        }
        Err(e) => return Err(PlanError::io(path, e)),
    };
    let meta = f.metadata().map_err(|e| PlanError::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse(
            "is not a regular file".into(),
            "pass a plan or policy file",
        ));
    }
    if meta.len() > max {
        return Err(refuse(
            format!("{} bytes is more than the {max} allowed", meta.len()),
            "this is not a file mvm wrote",
        ));
    }
    let mut bytes = Vec::new();
    (&f).take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PlanError::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(refuse(
            "grew past the size limit while being read".into(),
            "this is not a file mvm wrote",
        ));
    }
    Ok((f, bytes))
}
