//! The source bundle: which files of the source root go into `src/`, and
//! the attached addons' files beside them.
//!
//! - [`root`]: resolving `source.path` (or an addon's path) to a directory
//!   that may be bundled, inside the declaration's directory;
//! - [`select`]: include/exclude globs;
//! - [`names`]: which paths may name a bundle file, whoever adds it;
//! - [`limits`]: caps on the number and size of bundle files;
//! - [`walk`]: visiting the selected files in sorted order, rejecting what
//!   cannot be bundled safely;
//! - [`addons`]: each addon's directory, bundled at `.mvm/addons/<name>/`;
//! - [`owner`]: whose directory (app or addon) a finding is about;
//! - [`tree_hash`]: the content hash recorded in `launch.json`.

pub mod addons;
pub mod limits;
pub mod names;
pub mod owner;
pub mod root;
pub mod select;
pub mod tree_hash;
pub mod walk;

/// JSON pointer of the app's source, where bundle findings are reported.
pub const SOURCE_POINTER: &str = "/apps/0/source";
