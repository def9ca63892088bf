//! Reading the files inside a `.deb` without dpkg: an `ar` archive whose
//! `data.tar.xz` member holds the package's file tree.

use std::io::Read;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("reading package {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "package {path} has no data.tar.xz member (found: {found}); only xz-compressed packages are supported"
    )]
    NoData { path: PathBuf, found: String },
}

/// Calls `visit` with the path (relative, without `./`) and contents of every
/// regular file in the package's data archive, advancing `bar` by the
/// compressed bytes read.
pub fn for_each_file<E: From<DebError>>(
    deb: &Path,
    bar: &ProgressBar,
    mut visit: impl FnMut(&Path, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let read_error = |source| DebError::Read {
        path: deb.to_owned(),
        source,
    };
    let file = std::fs::File::open(deb).map_err(read_error)?;
    let mut archive = ar::Archive::new(file);
    let mut found = Vec::new();
    while let Some(member) = archive.next_entry() {
        let member = member.map_err(read_error)?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        if name != "data.tar.xz" {
            found.push(name);
            continue;
        }
        bar.set_length(member.header().size());
        let mut tar = tar::Archive::new(xz2::read::XzDecoder::new(bar.wrap_read(member)));
        for entry in tar.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().map_err(read_error)?.into_owned();
            let relative = path.strip_prefix(".").unwrap_or(&path).to_owned();
            visit(&relative, &mut entry)?;
        }
        return Ok(());
    }
    Err(DebError::NoData {
        path: deb.to_owned(),
        found: found.join(", "),
    }
    .into())
}
