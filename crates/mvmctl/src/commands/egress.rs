//! `mvmctl __egress-proxy --grant HOST:PORT ...` (hidden): one guest
//! connection through the egress gate. QEMU starts it per connection with
//! the connection on stdin/stdout/stderr, all one end of a socketpair (see
//! mvm-egress).

use std::io::Write;

/// The gate's log of one builder boot; a line is at most about 64 KiB.
const EGRESS_LOG_MAX_BYTES: u64 = 16 << 20;
use std::path::PathBuf;

use anyhow::Context;

/// Relay one guest connection to a granted host (started by QEMU; not for people).
#[derive(Debug, clap::Args)]
pub struct EgressArgs {
    /// A `HOST:PORT` the guest may reach; repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// A granted `HOST:PORT` the operator allowed to be loopback, private,
    /// link-local or metadata (as written or as resolved); repeatable.
    #[arg(long = "allow-private")]
    pub allow_private: Vec<String>,
    /// Append one line per connection (granted or refused) to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Directory of slot files that caps this microVM's concurrent
    /// connections (shared by every gate process of one microVM).
    #[arg(long)]
    pub slots: Option<PathBuf>,
    /// Concurrent connections allowed with `--slots`.
    #[arg(long, default_value_t = mvm_egress::MAX_CONNECTIONS)]
    pub max_connections: usize,
}

pub fn run(args: EgressArgs) -> anyhow::Result<i32> {
    let parse = |list: &[String]| {
        list.iter()
            .map(|g| mvm_egress::Grant::parse(g))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut gate = mvm_egress::Gate::new(parse(&args.grants)?, parse(&args.allow_private)?);
    gate.slots = args.slots.map(|dir| mvm_egress::Slots {
        dir,
        max: args.max_connections,
    });
    // The connection as a socket, not std's stdio: the gate needs socket
    // timeouts, and stdout is line-buffered, which would hold back TLS
    // records (they contain no newlines).
    use std::os::fd::FromRawFd;
    // SAFETY: fd 0 is the connection QEMU handed us; nothing else in this
    // process uses it.
    let conn = unsafe { std::os::unix::net::UnixStream::from_raw_fd(0) };
    // The OS error stays the cause; main prints the chain ("...: cause").
    conn.set_read_timeout(Some(gate.limits.header))
        .context("stdin must be the guest's socket (as QEMU's guestfwd gives it)")?;
    let mut log = args.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    // serve escapes every line: guest text never reaches the log raw.
    let outcome = mvm_egress::serve(conn, &gate, &mut |line| {
        if let Some(f) = log.as_mut() {
            // A guest that connects without end must not fill the disk: past
            // the cap the log keeps nothing more (the build log says so).
            if f.metadata().is_ok_and(|m| m.len() > EGRESS_LOG_MAX_BYTES) {
                return;
            }
            // One write per line so concurrent connections do not interleave.
            let _ = f.write_all(format!("egress: {line}\n").as_bytes());
        }
    });
    Ok(if outcome.is_ok() { 0 } else { 1 })
}
