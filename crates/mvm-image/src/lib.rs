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
mod compare;
pub mod compiled;
mod deps;
mod digest;
mod error;
mod ext4_times;
mod lock;
mod mirror;
mod progress;
mod reproduce;
mod seal;
mod store;
pub mod table;
mod tree;
mod upper;
mod wheel;

use std::path::Path;

pub use base::DebPackage;
pub use build::{BUILDER, BuildRequest, Built, Plan, build, build_locked, plan, source_date_epoch};
pub use compare::Difference;
pub use deps::Package;
pub use error::ImageError;
pub use lock::{DepsLock, ImageLock, Inputs, read as read_lock};
pub use progress::Progress;
pub use reproduce::{Reproduced, check_reproducible};
pub use store::{ImageRef, Meta, Store, StoreLock, disk_usage, free_bytes};
pub use wheel::WheelFile;

/// Finds the image `target` names in the store under `home` (`$MVM_HOME`):
/// an image id, a unique id prefix (8+ hex digits), a workload's app name
/// or workload id (its newest build), or a compile output directory.
pub fn resolve(home: &Path, target: &str) -> Result<ImageRef, ImageError> {
    Store::new(home).resolve(target)
}
