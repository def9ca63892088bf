//! `mvmctl __egress-proxy --grant HOST:PORT ...` (hidden): one guest
//! connection through the egress gate. QEMU starts it per connection with
//! the connection on stdin/stdout (see mvm-egress).

use std::io::Write;
use std::path::PathBuf;

/// Relay one guest connection to a granted host (started by QEMU; not for people).
#[derive(Debug, clap::Args)]
pub struct EgressArgs {
    /// A `HOST:PORT` the guest may reach; repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// Append one line per connection (granted or refused) to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

pub fn run(args: EgressArgs) -> anyhow::Result<i32> {
    let grants = args
        .grants
        .iter()
        .map(|g| mvm_egress::Grant::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    // Raw descriptors, not std's stdio: stdout is line-buffered, which
    // would hold back TLS records (they contain no newlines).
    use std::os::fd::FromRawFd;
    // SAFETY: fds 0 and 1 are the connection QEMU handed us; nothing else
    // in this process uses them.
    let (input, output) = unsafe { (std::fs::File::from_raw_fd(0), std::fs::File::from_raw_fd(1)) };
    let mut log = args.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let outcome = mvm_egress::serve(input, output, &grants, &mut |line| {
        if let Some(f) = log.as_mut() {
            // One write per line so concurrent connections do not interleave.
            let _ = f.write_all(format!("egress: {line}\n").as_bytes());
        }
    });
    Ok(if outcome.is_ok() { 0 } else { 1 })
}
