//! `Shutdown`: the host has already run `before_stop`; the agent stops
//! everything and powers off (dev mode: exits).

//! It takes the parts it stops, not the server's `Agent`, so the server
//! depends on it and not the other way round.

use crate::runner::Runners;
use crate::service::Services;
use crate::{log, pid1};

/// Whether the agent runs the VM (PID 1) or is a process on a host (dev
/// mode); decides what `Shutdown` and `Resume` may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Guest,
    Dev,
}

pub fn run(mode: Mode, runners: &Runners, services: &Services) -> ! {
    runners.stop_all();
    match mode {
        Mode::Dev => {
            // A dev agent is a host process: leave nothing behind, at once.
            services.signal_all(libc::SIGKILL);
            log!("stopped");
            std::process::exit(0)
        }
        Mode::Guest => {
            services.signal_all(libc::SIGTERM);
            pid1::power_off()
        }
    }
}
