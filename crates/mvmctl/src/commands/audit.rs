//! `mvmctl audit`: show, follow or verify the host's audit trail
//! (`$MVM_HOME/audit`, written by mvm-audit). Records are untrusted text
//! when shown: every string is escaped before it reaches the terminal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mvm_audit::{AuditError, Event, Follower, ProblemKind, Record};
use mvm_keys::{AUDIT_KEY, KeyRing, PublicKey};
use serde_json::Value;

use super::EXIT_REJECTED;

/// Print the audit trail, one line per record: seq, time, instance, event
/// and its main fields. `mvmctl audit verify` checks it.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub cmd: Option<AuditCmd>,
    /// Print each record exactly as stored: one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Only records about this instance.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Keep printing records as they are appended (Ctrl-C to stop).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Read this audit directory instead of $MVM_HOME/audit.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Check the whole hash chain and the signed head. Prints
    /// "ok: N records, last seq S, head H" (H: the signed head's hash, to
    /// compare with a copy kept elsewhere), or each problem with its line and
    /// kind and exits 2.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The public key the head must be signed with, a .pub file
    /// (`mvmctl key export mvm-audit` on the host that wrote the log).
    /// Default: this host's $MVM_HOME/keys/mvm-audit.pub.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// An audit directory (holding log.jsonl and head.json) to check
    /// instead of $MVM_HOME/audit, e.g. one copied from another host.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How often `--follow` looks for new records.
const POLL: Duration = Duration::from_millis(200);

pub fn run(args: AuditArgs) -> anyhow::Result<i32> {
    match args.cmd {
        Some(AuditCmd::Verify(v)) => verify(v),
        None => show(&args),
    }
}

fn default_dir() -> PathBuf {
    mvm_runtime::home::mvm_home().join("audit")
}

fn show(args: &AuditArgs) -> anyhow::Result<i32> {
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    if args.dir.is_some() && !dir.is_dir() {
        eprintln!(
            "error: {}: not a directory\n  hint: --dir names an audit directory, the one holding log.jsonl",
            dir.display()
        );
        return Ok(EXIT_REJECTED);
    }
    let mut follower = Follower::new(&dir);
    if !args.follow && !follower.path().exists() {
        eprintln!(
            "no audit records yet: {} does not exist",
            follower.path().display()
        );
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    loop {
        let batch = match follower.poll() {
            Ok(b) => b,
            Err(e @ AuditError::Malformed { .. }) => {
                // Keep showing what can be read; verify says what it means.
                eprintln!("warning: {}", mvm_ir::text::for_terminal(&e.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if batch.restarted {
            eprintln!(
                "note: {} was truncated, replaced or rewritten; showing it again from line 1",
                follower.path().display()
            );
        }
        if batch.records.is_empty() {
            if !args.follow {
                return Ok(0);
            }
            if !batch.restarted {
                std::thread::sleep(POLL);
            }
            continue;
        }
        for r in &batch.records {
            if args
                .instance
                .as_ref()
                .is_some_and(|want| r.instance.as_ref() != Some(want))
            {
                continue;
            }
            let line = if args.json {
                json_for_terminal(&r.raw)
            } else {
                human(r)
            };
            if let Err(e) = writeln!(out, "{line}") {
                // `mvmctl audit | head`: the reader is done, so are we.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(0);
                }
                return Err(e.into());
            }
        }
        out.flush()?;
    }
}

/// The stored line. mvm writes records as printable ASCII, so its lines
/// pass through byte for byte (a streamed copy verifies); a line holding
/// characters that could drive a terminal or hide text (DEL, C1, direction
/// and zero-width marks) was not written by mvm, and is shown with them as
/// JSON `\uXXXX` escapes rather than sent raw.
fn json_for_terminal(raw: &str) -> String {
    let bad = |c: char| {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
    };
    if !raw.chars().any(bad) {
        return raw.to_string();
    }
    raw.chars()
        .map(|c| {
            if bad(c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn esc(s: &str) -> String {
    mvm_ir::text::escape_control(s).into_owned()
}

/// A hash or digest shortened to 12 characters, like git; other text escaped.
fn short(s: &str) -> String {
    if s.len() > 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        s[..12].to_string()
    } else {
        esc(s)
    }
}

/// Quoted when it has spaces or quotes, so the words stay apart.
fn word(s: &str) -> String {
    let s = esc(s);
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        s
    } else {
        format!("{s:?}")
    }
}

/// `seq  time  instance  event  fields`.
fn human(r: &Record) -> String {
    let event = r.event.get("event").and_then(Value::as_str).unwrap_or("?");
    let instance = r.instance.as_deref().map_or_else(|| "-".to_string(), esc);
    let details = match r.typed() {
        Some(ev) => summary(&ev),
        None => generic(&r.event),
    };
    let line = format!(
        "{:>5}  {}  {:<12}  {:<13}  {details}",
        r.seq,
        esc(&r.ts),
        instance,
        esc(event)
    );
    line.trim_end().to_string()
}

fn summary(ev: &Event) -> String {
    let plan = |p: &Option<String>| p.as_deref().map_or("unsigned".into(), short);
    match ev {
        Event::Build {
            image_id,
            ir_hash,
            workload_id,
            inputs_sha256,
        } => format!(
            "workload={} image={} ir={} inputs={}",
            word(workload_id),
            short(image_id),
            short(ir_hash),
            short(inputs_sha256)
        ),
        Event::PlanVerified {
            plan_sha256,
            signers,
        } => {
            let who: Vec<String> = signers.iter().map(|s| word(s)).collect();
            let who = if who.is_empty() {
                "none".into()
            } else {
                who.join(",")
            };
            format!("plan={} signers={who}", short(plan_sha256))
        }
        Event::Admission {
            decision,
            check,
            detail,
            plan_sha256,
            ir_hash,
        } => {
            let mut s = match decision {
                mvm_audit::Decision::Admitted => "admitted".to_string(),
                mvm_audit::Decision::Refused => "REFUSED".to_string(),
            };
            if let Some(c) = check {
                s.push_str(&format!(" check={}", word(c)));
            }
            if let Some(d) = detail {
                s.push_str(&format!(" detail={}", word(d)));
            }
            s.push_str(&format!(
                " ir={} plan={}",
                short(ir_hash),
                plan(plan_sha256)
            ));
            s
        }
        Event::Up {
            image_id,
            ir_hash,
            plan_sha256,
            accel,
        } => format!(
            "image={} ir={} accel={} plan={}",
            short(image_id),
            short(ir_hash),
            word(accel),
            plan(plan_sha256)
        ),
        Event::Invoke {
            entrypoint,
            ok,
            duration_ms,
        } => format!(
            "entrypoint={} {} {duration_ms}ms",
            word(entrypoint),
            if *ok { "ok" } else { "FAILED" }
        ),
        Event::Exec {
            program,
            argc,
            argv_sha256,
            exit_code,
            duration_ms,
        } => {
            let exit = exit_code.map_or("none (killed)".into(), |c| c.to_string());
            format!(
                "program={} argc={argc} argv={} exit={exit} {duration_ms}ms",
                word(program),
                short(argv_sha256)
            )
        }
        Event::Down {} => String::new(),
        Event::Egress {
            kind,
            asked,
            address,
            decision,
            detail,
            bytes_up,
            bytes_down,
            duration_ms,
        } => {
            let mut s = format!(
                "{} {} {}",
                word(kind),
                if asked.is_empty() {
                    "-".into()
                } else {
                    word(asked)
                },
                match decision {
                    mvm_audit::Decision::Admitted => "allowed",
                    mvm_audit::Decision::Refused => "REFUSED",
                }
            );
            if let Some(a) = address {
                s.push_str(&format!(" to={}", word(a)));
            }
            if let Some(d) = detail {
                s.push_str(&format!(" detail={}", word(d)));
            }
            s.push_str(&format!(" up={bytes_up} down={bytes_down} {duration_ms}ms"));
            s
        }
        Event::Mediated {
            kind,
            destination,
            method,
            secrets,
            decision,
            status,
            detail,
            bytes_sent,
            bytes_received,
            duration_ms,
        } => {
            let mut s = format!(
                "{} {} {} {}",
                word(kind),
                word(method),
                word(destination),
                match decision {
                    mvm_audit::Decision::Admitted => "allowed",
                    mvm_audit::Decision::Refused => "REFUSED",
                }
            );
            if let Some(code) = status {
                s.push_str(&format!(" status={code}"));
            }
            if !secrets.is_empty() {
                let names: Vec<String> = secrets.iter().map(|n| word(n)).collect();
                s.push_str(&format!(" released={}", names.join(",")));
            }
            if let Some(d) = detail {
                s.push_str(&format!(" detail={}", word(d)));
            }
            s.push_str(&format!(
                " sent={bytes_sent} received={bytes_received} {duration_ms}ms"
            ));
            s
        }
        Event::Crash { detail } => format!("detail={}", word(detail)),
        Event::Repair {
            dropped_bytes,
            dropped_sha256,
        } => format!(
            "dropped a torn last line: {dropped_bytes} bytes, sha256 {}",
            short(dropped_sha256)
        ),
        Event::HeadDiverged {
            head_seq,
            head_log_len,
            found_seq,
            found_log_len,
        } => {
            let opt = |v: &Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
            format!(
                "TAMPERED: the log did not continue from its signed head (head seq {}, length {}; found seq {found_seq}, length {found_log_len})",
                opt(head_seq),
                opt(head_log_len)
            )
        }
    }
}

/// An event this build doesn't know (a newer mvm wrote it): its fields as `key=value`.
fn generic(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, v) in map {
        if ["seq", "ts", "prev", "instance", "event"].contains(&k.as_str()) {
            continue;
        }
        let val = match v {
            Value::String(s) => word(&short(s)),
            Value::Null => "-".into(),
            Value::Bool(_) | Value::Number(_) => v.to_string(),
            other => {
                let t = other.to_string();
                let t: String = t.chars().take(60).collect();
                esc(&t)
            }
        };
        parts.push(format!("{}={val}", esc(k)));
    }
    parts.join(" ")
}

fn verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let dir = match &args.dir {
        Some(d) => {
            if !d.is_dir() {
                eprintln!(
                    "error: {}: not a directory\n  hint: --dir names an audit directory, the one holding log.jsonl and head.json",
                    d.display()
                );
                return Ok(EXIT_REJECTED);
            }
            if !d.join("log.jsonl").exists() && !d.join("head.json").exists() {
                eprintln!(
                    "error: {}: no log.jsonl or head.json here: not an audit directory\n  hint: copy the whole $MVM_HOME/audit directory of the host that wrote the log",
                    d.display()
                );
                return Ok(EXIT_REJECTED);
            }
            d.clone()
        }
        None => default_dir(),
    };
    let key = match &args.key {
        Some(file) => read_pub(file)?,
        None => {
            let keys = mvm_runtime::home::mvm_home().join("keys");
            let pub_file = keys.join(format!("{AUDIT_KEY}.pub"));
            if !pub_file.exists() {
                if args.dir.is_none() && !dir.join("log.jsonl").exists() {
                    println!("ok: 0 records (nothing has been audited on this host yet)");
                    return Ok(0);
                }
                anyhow::bail!(
                    "no host audit key to verify {} with: {} does not exist\n  hint: for a log copied from another host, pass --key FILE with that host's public audit key (`mvmctl key export mvm-audit` there)",
                    dir.display(),
                    pub_file.display()
                );
            }
            // The key is made with the first record, so a host that has it
            // but no log and no genesis marker had its trail removed whole.
            if args.dir.is_none()
                && !dir.join("log.jsonl").exists()
                && !dir.join(mvm_audit::GENESIS).exists()
            {
                eprintln!(
                    "{}: error[missing]: this host has an audit key ({}) but no audit trail: log.jsonl and genesis.json are gone",
                    dir.display(),
                    pub_file.display()
                );
                eprintln!(
                    "  hint: mvm writes both with its first record; if this host's trail was never meant to be kept, remove {} too, otherwise treat everything since the key was made as unaudited",
                    pub_file.display()
                );
                println!("FAILED: the audit trail at {} is missing", dir.display());
                return Ok(EXIT_REJECTED);
            }
            KeyRing::new(&keys)?.public(AUDIT_KEY)?
        }
    };
    let report = mvm_audit::verify(&dir, &key.key)?;
    let log = dir.join("log.jsonl");
    for p in &report.problems {
        let place = if p.line != 0 {
            format!("{}:{}", log.display(), p.line)
        } else if p.file == "log.jsonl" {
            log.display().to_string()
        } else {
            dir.join(p.file).display().to_string()
        };
        let severity = if p.kind == ProblemKind::Torn {
            "warning"
        } else {
            "error"
        };
        eprintln!(
            "{place}: {severity}[{}]: {}",
            p.kind.code(),
            mvm_ir::text::for_terminal(&p.detail)
        );
        match p.kind {
            ProblemKind::BadHeadSignature => eprintln!(
                "  hint: verifying with key {} ({}); is that the audit key of the host that wrote this log?",
                key.key_id(),
                esc(&key.label())
            ),
            ProblemKind::HeadLags => eprintln!(
                "  hint: if no mvm process crashed or was killed here, treat line {} as suspect",
                p.line
            ),
            _ => {}
        }
    }
    let last = report
        .last_seq
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    if report.ok() {
        // The head hash is what an off-host copy compares to notice a rollback.
        match &report.head {
            Some(h) => println!(
                "ok: {} records, last seq {last}, head {}",
                report.records,
                &h.hash[..h.hash.len().min(16)]
            ),
            None => println!("ok: {} records, last seq {last}", report.records),
        }
        Ok(0)
    } else {
        let n = report
            .problems
            .iter()
            .filter(|p| p.kind != ProblemKind::Torn)
            .count();
        println!(
            "FAILED: {n} problem(s) in {} records (last seq {last}); the audit trail at {} does not verify",
            report.records,
            dir.display()
        );
        Ok(EXIT_REJECTED)
    }
}

fn read_pub(file: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n  hint: --key takes a .pub file: one line `ed25519 <base64> <name>`",
            file.display()
        )
    })?;
    Ok(PublicKey::parse_at(&text, &file.display().to_string())?)
}
