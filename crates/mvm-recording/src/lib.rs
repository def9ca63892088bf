//! Runtime SDK recordings (seeds 001/004): scripts that call
//! `Sandbox.create(...)` under `MVM_SDK_MODE=record` write a recording
//! (docs/recording.md), and this crate lowers it to Workload IR. It also
//! resolves the TypeScript runner for the auto-run path, the one place
//! where mvm executes a user's script on the host, and says so.
//!
//! [`input`] chooses the front end for whatever compile was given (IR,
//! declaration, recording, or a TypeScript script recorded by running it)
//! and returns the compile request; it is here because this crate is the
//! one that sees every front end (see its module docs).

pub mod autorun;
pub mod format;
pub mod input;
pub mod lower;
pub mod runner;

pub use format::{Recording, decode};
pub use lower::{LowerOptions, Lowered, lower};
