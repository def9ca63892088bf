//! Image build: root filesystems, builder microVM, content-addressed image store.
//!
//! `build` turns a compile output into an image in `$MVM_HOME/images`;
//! `resolve` finds an image by id, id prefix, workload name or compile
//! output directory. The package table (`table`) says how IR package names
//! are provided; docs/images.md describes all of it.

mod assemble;
mod base;
mod build;
mod builder;
mod buildlog;
pub mod compiled;
mod deps;
mod digest;
mod error;
mod lock;
mod mirror;
mod progress;
mod seal;
mod store;
pub mod table;
mod tree;
mod upper;
mod wheel;

use std::path::Path;

pub use base::DebPackage;
pub use build::{BUILDER, BuildRequest, Built, Plan, build, plan};
pub use deps::Package;
pub use error::ImageError;
pub use lock::{DepsLock, ImageLock, Inputs};
pub use progress::Progress;
pub use store::{ImageRef, Meta, Store, StoreLock, disk_usage, free_bytes};
pub use wheel::WheelFile;

/// Finds the image `target` names in the store under `home` (`$MVM_HOME`):
/// an image id, a unique id prefix (8+ hex digits), a workload's app name
/// or workload id (its newest build), or a compile output directory.
pub fn resolve(home: &Path, target: &str) -> Result<ImageRef, ImageError> {
    Store::new(home).resolve(target)
}
