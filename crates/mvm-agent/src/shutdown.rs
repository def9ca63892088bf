//! `Shutdown`: the host has already run `before_stop`; the agent stops
//! everything and powers off (dev mode: exits).

use crate::server::{Agent, Mode};
use crate::{log, pid1};

pub fn run(agent: &Agent) -> ! {
    agent.runners.stop_all();
    match agent.mode {
        Mode::Dev => {
            // A dev agent is a host process: leave nothing behind, at once.
            agent.services.signal_all(libc::SIGKILL);
            log!("stopped");
            std::process::exit(0)
        }
        Mode::Guest => {
            agent.services.signal_all(libc::SIGTERM);
            pid1::power_off()
        }
    }
}
