//! mvm guest agent. As PID 1 in the microVM it brings up the root
//! filesystem and serves the host on the `mvm.agent` virtio-serial port;
//! with `--stdio` or `--socket` it serves the same protocol as an ordinary
//! process, for tests without a VM.

mod broker;
mod files;
mod hook_env;
mod hooks;
mod launch;
mod layout;
mod log;
mod pid1;
mod process;
mod reaper;
mod runner;
mod server;
mod service;
mod shutdown;
mod transport;
mod udp_relay;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clap::Parser;

use crate::layout::Layout;
use crate::server::{Agent, Mode};
use crate::transport::{Transport, VirtioSerial};

/// How long the agent waits for the `mvm.agent` port after boot.
const PORT_WAIT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(
    version,
    about = "mvm guest agent (PID 1 in the VM; dev mode with --stdio or --socket)"
)]
struct Cli {
    /// Serve one host on stdin/stdout.
    #[arg(long, conflicts_with = "socket")]
    stdio: bool,
    /// Serve hosts connecting to a unix socket at PATH.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Root of the guest files (`etc/mvm/launch.json`, `etc/mvm/hooks/`, `app/`).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Directory holding the function runners.
    #[arg(long, value_name = "DIR", default_value = layout::INITRAMFS_RUNNERS_DIR)]
    runners: PathBuf,
}

fn main() {
    if std::process::id() == 1 {
        run_as_init();
    }
    let cli = Cli::parse();
    let transport: Box<dyn Transport> = match (&cli.socket, cli.stdio) {
        (Some(path), _) => match transport::Socket::bind(path) {
            Ok(socket) => Box::new(socket),
            Err(e) => fail(&format!("cannot listen on {}: {e}", path.display())),
        },
        (None, true) => Box::new(transport::Stdio::new()),
        (None, false) => fail("not PID 1: pass --stdio or --socket PATH to serve in dev mode"),
    };
    if let Err(e) = reaper::start().and_then(|()| reaper::become_subreaper()) {
        fail(&format!("cannot set up child reaping: {e}"));
    }
    let agent = Arc::new(Agent::new(
        Mode::Dev,
        Layout {
            root: cli.root,
            runners: cli.runners,
        },
    ));
    let concurrent = cli.socket.is_some();
    serve_all(&agent, transport, concurrent);
}

fn run_as_init() -> ! {
    if let Err(e) = reaper::start() {
        log!("cannot set up child reaping: {e}");
        pid1::power_off();
    }
    if let Err(e) = pid1::boot() {
        log!("boot failed: {e}");
        pid1::power_off();
    }
    let port = match VirtioSerial::open(PORT_WAIT) {
        Ok(port) => port,
        Err(e) => {
            log!("{e}");
            pid1::power_off();
        }
    };
    // The broker port appears with the agent's (same device): no wait.
    broker::start();
    log!("ready");
    let agent = Arc::new(Agent::new(Mode::Guest, Layout::guest()));
    serve_all(&agent, Box::new(port), false);
    log!("the host channel closed for good");
    pid1::power_off()
}

/// Serves every connection the transport yields: one after another on a
/// serial port (there is only one host), side by side on a socket.
fn serve_all(agent: &Arc<Agent>, mut transport: Box<dyn Transport>, concurrent: bool) {
    // On a serial port every connection writes to the same port, so they
    // share one outbox (requests of an earlier connection may still be
    // replying); on a socket each has its own.
    let mut shared: Option<server::Writer> = None;
    loop {
        let connection = match transport.accept() {
            Ok(Some(connection)) => connection,
            Ok(None) => return,
            Err(e) => {
                log!("cannot accept a host connection: {e}");
                return;
            }
        };
        let agent = agent.clone();
        let writer = match (&shared, concurrent) {
            (Some(outbox), false) => {
                outbox.reconnect(connection.writer);
                outbox.clone()
            }
            (None, false) => {
                let outbox = server::Outbox::new(connection.writer);
                shared = Some(outbox.clone());
                outbox
            }
            (_, true) => server::Outbox::new(connection.writer),
        };
        let serve = move || {
            if let Err(e) = server::serve(&agent, connection.reader, writer) {
                log!("host connection ended: {e}");
            }
        };
        if concurrent {
            thread::spawn(serve);
        } else {
            serve();
        }
    }
}

fn fail(message: &str) -> ! {
    log!("{message}");
    std::process::exit(2)
}
