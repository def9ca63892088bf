//! Sealed, atomically published VM snapshot directories.
//!
//! A snapshot is a directory `<parent>/<name>` holding data files (typically `vm.state`, the
//! QEMU migration stream, and `scratch.img`, a sparse copy of the scratch disk) plus two
//! metadata files:
//!
//! - `manifest.json`: a [`Manifest`], pretty JSON (fields in declaration order, maps sorted),
//!   at most 1 MiB. It lists every data file with its size and [digest](#file-digest), the
//!   caller's `bindings` (image digest, QEMU version, ...) and an opaque `payload`.
//! - `seal`: lowercase hex HMAC-SHA256, keyed with the host [`SealKey`], over the exact bytes of
//!   `manifest.json` (a trailing newline in `seal` is allowed).
//!
//! Nothing else may be in the directory, every entry must be a regular file (never a
//! symlink), and the directory, files and key are created with modes 0700/0600.
//!
//! # Everything on disk is untrusted
//!
//! [`Snapshot::open`] checks the seal first (constant time), then parses the manifest, then
//! checks that the directory holds exactly the listed files with the listed sizes. Because the
//! files are bound to the manifest by their digests, contents are checked when they are used:
//! [`Snapshot::verify`] hashes a file in place, [`Snapshot::copy_out`] hashes while copying and
//! deletes the copy on mismatch. A snapshot copied from another host fails the seal (different
//! key); one from another image or QEMU fails [`Snapshot::check_bindings`].
//!
//! # Publication
//!
//! [`Staging`] writes into `<parent>/.staging-<name>-<pid>-<random>`; [`Staging::commit`]
//! writes the manifest and seal, fsyncs everything and renames the directory to
//! `<parent>/<name>` with `RENAME_NOREPLACE`. A crash before the rename leaves only a hidden
//! `.staging-*` directory, which [`list`] skips, [`Snapshot::open`] refuses (no seal), and
//! [`clean_staging`] removes once its pid is gone. [`remove`] first renames a snapshot to
//! `.removing-<name>-<pid>-<random>`, so a half-deleted snapshot is never visible under its name.
//!
//! # File digest
//!
//! `"blake3:" + hex(BLAKE3(...))` over the file's *logical* content, so a hole and explicitly
//! written zeros hash the same and sparse copies keep the digest:
//!
//! ```text
//! u64_le(file length)
//! for each 4096-byte block at offset o = 0, 4096, ... (the last block may be short),
//!     if the block is not all zeros:  u64_le(o) || block bytes
//! ```
//!
//! Holes are skipped with `SEEK_DATA`/`SEEK_HOLE`, so hashing or copying a 1 GiB sparse disk
//! costs only its allocated data. Copies write only non-zero blocks into a file pre-sized with
//! `set_len`, so they are sparse even where the source held explicit zeros.
//!
//! Linux only (`renameat2`, `SEEK_DATA`, `O_NOFOLLOW`).

mod digest;
mod error;
mod fsutil;
mod key;
mod snapshot;
mod staging;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::SnapshotError;
pub use key::SealKey;
pub use snapshot::{ListEntry, Snapshot, clean_staging, leftovers, list, remove};
pub use staging::Staging;

/// The only manifest format this crate reads and writes.
pub const FORMAT: u32 = 1;

/// What a snapshot says about itself; stored as `manifest.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`]; other values are refused.
    pub format: u32,
    /// Caller-defined, e.g. "template", "paused", "tagged".
    pub kind: String,
    pub created_unix_ms: u64,
    /// What the snapshot is bound to (image digest, kernel digest, QEMU version, mvm version,
    /// vcpus, memory...). Compared by the caller with [`Snapshot::check_bindings`].
    pub bindings: BTreeMap<String, String>,
    /// Every data file in the directory. No other files besides `manifest.json` and `seal`.
    pub files: BTreeMap<String, FileEntry>,
    /// Opaque caller payload (e.g. the instance configuration to recreate). Sealed too.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// Size and [digest](crate#file-digest) of one data file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub size: u64,
    /// `"blake3:<64 hex>"`.
    pub digest: String,
}
