//! The source bundle: which files of the source root go into `src/`.
//!
//! - [`root`]: resolving `source.path` to a directory that may be bundled;
//! - [`select`]: include/exclude globs;
//! - [`walk`]: visiting the selected files in sorted order, rejecting what
//!   cannot be bundled safely;
//! - [`tree_hash`]: the content hash recorded in `launch.json`.

pub mod root;
pub mod select;
pub mod tree_hash;
pub mod walk;

/// JSON pointer of the app's source, where bundle findings are reported.
pub const SOURCE_POINTER: &str = "/apps/0/source";
