//! `mvmctl __egress-proxy ...` (hidden): one guest connection through the
//! egress gate. QEMU starts it per connection with the connection on
//! stdin/stdout/stderr, all one end of a socketpair (see mvm-egress).
//!
//! Three ways in, one per forwarded address:
//! - `--grant A:P ...`: the `HTTP CONNECT` proxy (`HTTPS_PROXY`);
//! - `--to HOST:PORT --grant HOST:PORT`: the guest connected to a granted
//!   name's own address; relayed without reading a request;
//! - `--dns --name HOST=ADDR ...`: the grants-only DNS-over-TCP responder.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use mvm_egress::{DnsName, Gate, Grant, Mode, Pin, Rate, Record, Slots};
use mvm_runtime::audit::{Event, Recorder};

/// Either log of one microVM (or builder boot) stops growing past this; a
/// line is at most about 64 KiB.
const EGRESS_LOG_MAX_BYTES: u64 = 16 << 20;

/// Relay one guest connection to a granted host (started by QEMU; not for people).
#[derive(Debug, clap::Args)]
pub struct EgressArgs {
    /// A `HOST:PORT` the guest may reach; repeatable.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// A granted `HOST:PORT` the operator allowed to be loopback, private,
    /// link-local or metadata (as written, resolved or pinned); repeatable.
    #[arg(long = "allow-private")]
    pub allow_private: Vec<String>,
    /// Serve the connection for this one grant without reading a request
    /// (the guest connected to the name's own address). Must be granted.
    #[arg(long, conflicts_with = "dns")]
    pub to: Option<String>,
    /// Serve DNS over TCP, answering the `--name` entries only.
    #[arg(long)]
    pub dns: bool,
    /// `HOST=ADDR`: a granted name and the guest address DNS answers for
    /// it; repeatable (with `--dns`).
    #[arg(long = "name", requires = "dns")]
    pub names: Vec<String>,
    /// `HOST=IP`: connect to IP instead of resolving HOST (still
    /// address-filtered: a private IP needs `--allow-private`); repeatable.
    #[arg(long = "pin")]
    pub pins: Vec<String>,
    /// Append one text line per decision (`egress: ...`) to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Append one JSON object per connection to this file (`ts`, `kind`,
    /// `asked`, `address`, `decision`, `reason`, `bytes_up`, `bytes_down`,
    /// `duration_ms`); with `--dns`, one per query instead, and one for the
    /// connection only when a limit refused it before any query.
    #[arg(long)]
    pub json_log: Option<PathBuf>,
    /// Directory of slot files that caps this microVM's concurrent
    /// connections (shared by every gate process of one microVM); also
    /// holds the `--max-rate` state.
    #[arg(long)]
    pub slots: Option<PathBuf>,
    /// Concurrent connections allowed with `--slots`.
    #[arg(long, default_value_t = mvm_egress::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// New connections a second this microVM may open (needs `--slots`).
    #[arg(long, requires = "slots", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rate: Option<u32>,
    /// Seconds a relay (or DNS connection) may stay idle.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: Option<u64>,
    /// `$MVM_HOME` whose audit trail records each connection (with `--instance`).
    #[arg(long, requires = "instance")]
    pub audit_home: Option<PathBuf>,
    /// The instance the audit records are for.
    #[arg(long, requires = "audit_home")]
    pub instance: Option<String>,
}

pub fn run(args: EgressArgs) -> anyhow::Result<i32> {
    let gate = gate(&args)?;
    let mode = mode(&args, &gate)?;
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
    // stdout and stderr are the guest's socket too: nothing this process
    // prints (a warning naming host paths, a panic) may reach the guest.
    silence_stdio();
    let mut text_log = open_log(args.log.as_deref());
    let mut json_log = open_log(args.json_log.as_deref());
    let mut note = |line: &str| {
        // serve escapes every line: guest text never reaches the log raw.
        append(&mut text_log, format!("egress: {line}\n").as_bytes());
    };
    let dns = matches!(mode, Mode::Dns(_));
    let mut query = |r: &Record| append(&mut json_log, r.json_line().as_bytes());
    let record = mvm_egress::handle(conn, &gate, &mode, &mut note, &mut query);
    // In DNS mode each query has its line; the connection has one only
    // when it was refused before any query (a limit).
    if !dns || !record.allowed {
        append(&mut json_log, record.json_line().as_bytes());
    }
    // A limit's refusals are in the egress log only (see Record::limited).
    if let (Some(home), Some(instance)) = (&args.audit_home, &args.instance)
        && !record.limited
        && let Err(why) = audit(home, instance, &record)
    {
        append(
            &mut text_log,
            format!("egress: not audited: {why}\n").as_bytes(),
        );
    }
    Ok(if record.allowed { 0 } else { 1 })
}

/// The gate the flags describe.
fn gate(args: &EgressArgs) -> anyhow::Result<Gate> {
    let grants = |list: &[String]| {
        list.iter()
            .map(|g| Grant::parse(g))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut gate = Gate::new(grants(&args.grants)?, grants(&args.allow_private)?);
    gate.pins = args
        .pins
        .iter()
        .map(|p| Pin::parse(p))
        .collect::<Result<_, _>>()?;
    if let Some(secs) = args.idle_timeout {
        gate.limits.idle = Duration::from_secs(secs);
    }
    if let Some(dir) = &args.slots {
        gate.slots = Some(Slots {
            dir: dir.clone(),
            max: args.max_connections,
        });
        gate.rate = args.max_rate.map(|per_second| Rate {
            file: dir.join("rate"),
            per_second,
        });
    }
    Ok(gate)
}

fn mode(args: &EgressArgs, gate: &Gate) -> anyhow::Result<Mode> {
    if args.dns {
        let names = args
            .names
            .iter()
            .map(|n| DnsName::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Mode::Dns(names));
    }
    match &args.to {
        None => Ok(Mode::Proxy),
        Some(to) => {
            let to = Grant::parse(to)?;
            anyhow::ensure!(
                gate.grants.contains(&to),
                "--to {to} is not among the --grant destinations; grant it too"
            );
            Ok(Mode::Direct(to))
        }
    }
}

/// Points stdout and stderr at /dev/null (stdin stays the connection).
pub fn silence_stdio() {
    let Ok(null) = File::options().write(true).open("/dev/null") else {
        return;
    };
    use std::os::fd::AsRawFd;
    for fd in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors; both stay valid.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
}

fn open_log(path: Option<&Path>) -> Option<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path?)
        .ok()
}

/// Appends `line` with one write(2) (O_APPEND), so concurrent gate
/// processes never interleave. A guest that connects without end must not
/// fill the disk: past the cap the log keeps nothing more (the build log
/// says so).
fn append(log: &mut Option<File>, line: &[u8]) {
    let Some(f) = log.as_mut() else { return };
    if f.metadata().is_ok_and(|m| m.len() > EGRESS_LOG_MAX_BYTES) {
        return;
    }
    let _ = f.write(line);
}

/// The connection's outcome in the host audit trail. A failure never
/// fails the connection, which already happened; it is said in the text
/// log (stderr is silenced).
fn audit(home: &Path, instance: &str, record: &Record) -> Result<(), String> {
    let recorder = Recorder::open(home).map_err(|e| e.to_string())?;
    let event = Event::egress(
        record.kind.as_str(),
        record.asked.as_deref().unwrap_or(""),
        record.address.clone(),
        if record.allowed {
            mvm_audit::Decision::Admitted
        } else {
            mvm_audit::Decision::Refused
        },
        record.reason.as_deref(),
        record.bytes_up,
        record.bytes_down,
        record.duration_ms(),
    );
    recorder
        .record_or_warn(Some(instance), &event)
        .map(drop)
        .ok_or_else(|| {
            format!(
                "the audit trail in {} refused the record",
                recorder.dir().display()
            )
        })
}
