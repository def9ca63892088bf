//! PID 1 duties in the VM: bring up the root filesystem described by the
//! boot contract (docs/architecture.md), switch into it, and later power
//! the VM off. Everything else (serving the host) is shared with dev mode.

mod boot;
mod modules;
mod mounts;
mod net;
mod power;

pub use boot::boot;
pub use power::{power_off, resume};
