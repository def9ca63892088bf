//! PID 1 duties in the VM: bring up the root filesystem described by the
//! boot contract (docs/architecture.md), switch into it, and later power
//! the VM off. Everything else (serving the host) is shared with dev mode.

mod boot;
mod etc;
mod guest_net;
mod modules;
mod mounts;
mod net;
#[cfg(test)]
mod netns_test;
mod policy;
mod power;
mod rtnl;

pub use boot::boot;
pub use power::{power_off, resume};
