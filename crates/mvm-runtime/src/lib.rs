//! Instance lifecycle of mvm's microVM runtime: `up`, `invoke`, `exec`,
//! `ps`, `logs`, `down`, and the per-instance supervisor behind them.
//!
//! Layout:
//! - [`home`], [`name`]: where instances live and what they are called;
//! - [`state`]: `state.json`, the record every command reads;
//! - [`persist`]: the snapshot-relevant part of that record, in one place;
//! - [`process`]: pids checked against their start time;
//! - [`control`]: the CLI ↔ supervisor channel on `control.sock`;
//! - [`supervisor`]: the per-instance process behind `control.sock`;
//!   [`supervisor::run`] is what `mvmctl __supervise NAME` calls;
//! - [`image`], [`assets`]: what an instance boots;
//! - [`admission`], [`audit`]: the operator's policy and signed plans
//!   checked at `up`, and the audit trail every instance writes;
//! - [`secrets`], [`input`]: secret tokens and invoke arguments;
//! - [`snapshot`]: template, paused and tagged snapshots (what binds
//!   them, where they live); [`lifecycle`]: pause, resume, snapshot, fork;
//! - [`error`]: every failure, as a message a person can act on.

pub mod admission;
pub mod assets;
pub mod audit;
pub mod broker;
pub mod call;
pub mod control;
pub mod down;
pub mod error;
pub mod home;
pub mod image;
pub mod input;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod name;
pub mod network;
pub mod persist;
pub mod private;
pub mod process;
pub mod ps;
pub mod secrets;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod up;

pub use error::RuntimeError;
pub use name::InstanceName;
