//! Writing the compile output.
//!
//! - [`staging`]: the tree being built in a temporary sibling of `--out`,
//!   with normalised modes and mtimes and the hashes for `SHA256SUMS`;
//! - [`archive`]: the deterministic `.tgz` form of a staged tree;
//! - [`target`]: what may be replaced at `--out`, and the final rename.

pub mod archive;
pub mod staging;
pub mod target;
