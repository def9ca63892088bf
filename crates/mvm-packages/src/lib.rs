//! The image package table: how each IR package name (a Nix attribute
//! name such as `python313` or `uv`) is provided on this host, from Debian
//! packages and PyPI wheels, and the resolver that turns an image's package
//! list into a root plan or says why it cannot.
//!
//! Both halves ask it: `mvm-compile` warns at compile time about an image
//! this mvm cannot build (`W_IMAGE_UNBUILDABLE`) and about a function with
//! no runtime in its image, and `mvm-image` builds from the same plan, so
//! compile and build never disagree. It depends on nothing of ours.
//! docs/images.md prints the table.

mod resolve;
mod runtime;
mod table;

pub use resolve::{DepsTool, Problem, ResolveError, Resolver, RootPlan, Subject};
pub use runtime::{Runtime, Suggestion};
pub use table::{Entry, Provision, Suite, TABLE, WheelLayout, WheelReq, lookup};
