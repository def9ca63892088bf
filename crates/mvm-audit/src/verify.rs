//! The checker, and a reader for viewers.

use std::collections::HashSet;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::append::{GENESIS, HEAD, LOG, PENDING};
use crate::format::{ZERO_HASH, sha256_hex};
use crate::fsutil::{MAX_LOG, MAX_SMALL, read_capped};
use crate::head::{Genesis, Head};
use crate::{AuditError, Event};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Malformed,
    BadLink,
    HeadMismatch,
    /// The log has exactly one complete, well-linked record more than the signed
    /// head, and pending.json (signed before the record was written) names it:
    /// what a writer leaves when it stops between appending a record and
    /// rewriting head.json. The next append signs a head covering it.
    HeadLags,
    BadHeadSignature,
    /// Incomplete last line: a writer crashed mid-write; the next append repairs it.
    Torn,
    /// A `head_diverged` record: a writer found the log not continuing
    /// from the signed head, so what came before it was altered.
    Diverged,
    /// genesis.json says the trail was started, with a first record the
    /// log no longer begins with (or the log is gone): removed or replaced.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is about: `log.jsonl`, `head.json` or `genesis.json`.
    pub file: &'static str,
    /// 1-based line in log.jsonl (0 when not tied to a line).
    pub line: usize,
    pub kind: ProblemKind,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Complete lines checked.
    pub records: usize,
    pub last_seq: Option<u64>,
    pub problems: Vec<Problem>,
    /// head.json, when it is there and validly signed: its seq and hash are
    /// what an off-host observer compares to notice a rollback.
    pub head: Option<Head>,
    /// genesis.json, when it is there and validly signed.
    pub genesis: Option<Genesis>,
    /// Whether log.jsonl exists at all.
    pub log_exists: bool,
}

impl ProblemKind {
    /// Stable snake_case name, for output people and scripts read.
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::Malformed => "malformed",
            ProblemKind::BadLink => "bad_link",
            ProblemKind::HeadMismatch => "head_mismatch",
            ProblemKind::HeadLags => "head_lags",
            ProblemKind::BadHeadSignature => "bad_head_signature",
            ProblemKind::Torn => "torn",
            ProblemKind::Diverged => "diverged",
            ProblemKind::Missing => "missing",
        }
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Report {
    /// True when nothing but a torn last line (which the next writer repairs) was found.
    /// [`ProblemKind::HeadLags`] is not ok: until the next append signs it, nothing
    /// vouches for the last record (anyone who can write the file could have added it).
    pub fn ok(&self) -> bool {
        self.problems.iter().all(|p| p.kind == ProblemKind::Torn)
    }
}

/// One parsed record, for viewers.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: usize,
    pub seq: u64,
    pub ts: String,
    pub prev: String,
    pub hash: String,
    pub instance: Option<String>,
    /// The whole record object (includes "event" and its fields).
    pub event: Value,
    /// The line exactly as stored (without its '\n'): `hash` is its sha256.
    pub raw: String,
}

impl Record {
    /// The typed event, if this build knows the kind.
    pub fn typed(&self) -> Option<Event> {
        serde_json::from_value(self.event.clone()).ok()
    }
}

struct Split<'a> {
    lines: Vec<&'a [u8]>,
    torn: Option<&'a [u8]>,
    complete_len: u64,
}

fn split(bytes: &[u8]) -> Split<'_> {
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let complete = &bytes[..keep];
    let lines = if complete.is_empty() {
        Vec::new()
    } else {
        complete[..complete.len() - 1]
            .split(|&b| b == b'\n')
            .collect()
    };
    Split {
        lines,
        torn: (keep < bytes.len()).then(|| &bytes[keep..]),
        complete_len: keep as u64,
    }
}

/// The log's bytes (`None`: no log.jsonl), refusing links, FIFOs and the oversized.
fn read_log(dir: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    read_capped(&dir.join(LOG), MAX_LOG)
}

/// Parse one complete line (without its '\n'); `n` is its 1-based line number.
pub(crate) fn parse_record(line: &[u8], n: usize, path: &Path) -> Result<Record, AuditError> {
    let bad = |detail: &str| AuditError::Malformed {
        path: path.to_path_buf(),
        line: n,
        detail: detail.to_string(),
    };
    let raw = std::str::from_utf8(line).map_err(|_| bad("not UTF-8"))?;
    let v: Value = serde_json::from_str(raw).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no numeric seq"))?;
    let str_field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Record {
        line: n,
        seq,
        ts: str_field("ts").ok_or_else(|| bad("no ts"))?,
        prev: str_field("prev").ok_or_else(|| bad("no prev"))?,
        hash: sha256_hex(line),
        instance: str_field("instance"),
        raw: raw.to_string(),
        event: v,
    })
}

/// All complete records in order. A torn last line is skipped; a malformed line is an error.
pub fn read(dir: &Path) -> Result<Vec<Record>, AuditError> {
    let bytes = read_log(dir)?.unwrap_or_default();
    let path = dir.join(LOG);
    split(&bytes)
        .lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| parse_record(line, i + 1, &path))
        .collect()
}

/// Check the chain and the signed head. Problems are collected, not fatal;
/// Err only when the files can't be read at all.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Result<Report, AuditError> {
    let bytes = read_log(dir)?;
    let mut report = Report {
        log_exists: bytes.is_some(),
        ..Report::default()
    };
    let bytes = bytes.unwrap_or_default();
    let sp = split(&bytes);
    let parsed: Vec<Option<(u64, String)>> = sp
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_slice(l).ok()?;
            if v.get("event").and_then(Value::as_str) == Some("head_diverged") {
                report.problems.push(Problem {
                    file: LOG,
                    line: i + 1,
                    kind: ProblemKind::Diverged,
                    detail: format!(
                        "a writer found the log not continuing from its signed head \
                         (head seq {}, log length {}; found seq {}, length {}): \
                         records before this line were edited, removed or added",
                        v.get("head_seq").map_or("none".into(), Value::to_string),
                        v.get("head_log_len")
                            .map_or("none".into(), Value::to_string),
                        v.get("found_seq").map_or("?".into(), Value::to_string),
                        v.get("found_log_len").map_or("?".into(), Value::to_string),
                    ),
                });
            }
            Some((
                v.get("seq")?.as_u64()?,
                v.get("prev")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let all_seqs: HashSet<u64> = parsed.iter().flatten().map(|(s, _)| *s).collect();
    let hashes: Vec<String> = sp.lines.iter().map(|l| sha256_hex(l)).collect();

    let mut prev_hash = ZERO_HASH.to_string();
    let mut prev_seq: u64 = 0;
    for (i, p) in parsed.iter().enumerate() {
        let n = i + 1;
        report.records += 1;
        let Some((seq, prev)) = p else {
            report.problems.push(Problem {
                file: LOG,
                line: n,
                kind: ProblemKind::Malformed,
                detail: "not a JSON object with numeric seq and string prev".into(),
            });
            prev_hash = hashes[i].clone();
            continue;
        };
        let (seq, prev) = (*seq, prev.as_str());
        let linked = prev == prev_hash;
        let consecutive = seq == prev_seq + 1;
        if !linked || !consecutive {
            let detail = if seq <= prev_seq {
                format!("seq {seq} after seq {prev_seq}: out of order (swapped)")
            } else if seq > prev_seq + 1 {
                let missing: Vec<u64> = (prev_seq + 1..seq).collect();
                if missing.iter().all(|s| all_seqs.contains(s)) {
                    format!("seq {seq} after seq {prev_seq}: out of order (swapped)")
                } else if missing.len() == 1 {
                    format!("record {} missing (deleted)", missing[0])
                } else {
                    format!("records {}..={} missing (deleted)", prev_seq + 1, seq - 1)
                }
            } else if n == 1 {
                "line 1 is seq 1 but its prev is not the zero hash: edited".into()
            } else {
                format!(
                    "line {} was edited (its hash no longer matches line {n}'s prev)",
                    n - 1
                )
            };
            report.problems.push(Problem {
                file: LOG,
                line: n,
                kind: ProblemKind::BadLink,
                detail,
            });
        }
        prev_hash = hashes[i].clone();
        prev_seq = seq;
        report.last_seq = Some(seq);
    }
    if let Some(t) = sp.torn {
        report.problems.push(Problem {
            file: LOG,
            line: sp.lines.len() + 1,
            kind: ProblemKind::Torn,
            detail: format!(
                "incomplete last line ({} bytes); the next append repairs it",
                t.len()
            ),
        });
    }
    check_head(dir, key, &sp, &hashes, &mut report)?;
    check_genesis(dir, key, &hashes, &mut report)?;
    Ok(report)
}

fn check_head(
    dir: &Path,
    key: &VerifyingKey,
    sp: &Split<'_>,
    hashes: &[String],
    report: &mut Report,
) -> Result<(), AuditError> {
    let last_line = sp.lines.len();
    let last_seq = report.last_seq.unwrap_or(0);
    let last_hash = hashes.last().map_or(ZERO_HASH, String::as_str);
    let mismatch = |detail: String| Problem {
        file: LOG,
        line: last_line,
        kind: ProblemKind::HeadMismatch,
        detail,
    };
    // Does the log hold exactly one more record than a head (seq, hash, log_len)
    // describes, linked to it? Its chain link was already checked above.
    let last_linked = !report.problems.iter().any(|p| {
        p.line == last_line && matches!(p.kind, ProblemKind::BadLink | ProblemKind::Malformed)
    });
    let lags_by_one = |seq: u64, hash: &str, log_len: u64| {
        last_line >= 1
            && last_linked
            && last_seq == seq + 1
            && hash
                == hashes
                    .len()
                    .checked_sub(2)
                    .map_or(ZERO_HASH, |i| hashes[i].as_str())
            && log_len == sp.complete_len - sp.lines[last_line - 1].len() as u64 - 1
    };
    // Only a record a pending.json named before it was written is a crash's.
    let lag = |head_seq: u64| -> Result<Problem, AuditError> {
        let pending = read_signed(dir, PENDING, key, true)?;
        let named = pending.as_ref().is_ok_and(|p| {
            p.seq == last_seq && p.hash == last_hash && p.log_len == sp.complete_len
        });
        Ok(if named {
            Problem {
                file: LOG,
                line: last_line,
                kind: ProblemKind::HeadLags,
                detail: format!(
                    "line {last_line} (seq {last_seq}) is not covered by the signed head (seq {head_seq}): \
                     a writer appended it and stopped before rewriting head.json (crashed or killed); \
                     the next append signs it, and until then nothing vouches for it"
                ),
            }
        } else {
            let why = match pending {
                Err(why) => why,
                Ok(p) => format!(
                    "pending.json names seq {} ({}), not this record",
                    p.seq,
                    &p.hash[..p.hash.len().min(16)]
                ),
            };
            mismatch(format!(
                "line {last_line} (seq {last_seq}) follows the signed head (seq {head_seq}) but no signed \
                 pending.json names it ({why}): added without the audit key (a crashed writer's \
                 record is always named by the pending.json it signed first)"
            ))
        })
    };
    let head = match read_signed(dir, HEAD, key, false)? {
        Ok(h) => h,
        Err(why) if why == NOT_THERE => {
            if lags_by_one(0, ZERO_HASH, 0) {
                report.problems.push(lag(0)?);
            } else if last_line > 0 {
                report
                    .problems
                    .push(mismatch("log has records but head.json is missing".into()));
            }
            return Ok(());
        }
        Err(why) => {
            report.problems.push(Problem {
                file: HEAD,
                line: 0,
                kind: ProblemKind::BadHeadSignature,
                detail: why,
            });
            return Ok(());
        }
    };
    if head.seq > last_seq || head.log_len > sp.complete_len {
        report.problems.push(mismatch(format!(
            "log ends at seq {last_seq} but the signed head is seq {}: truncated",
            head.seq
        )));
    } else if lags_by_one(head.seq, &head.hash, head.log_len) {
        report.problems.push(lag(head.seq)?);
    } else if head.seq < last_seq {
        report.problems.push(mismatch(format!(
            "log ends at seq {last_seq} but the signed head is seq {}: records after it are unsigned (added without the audit key; a crashed writer leaves at most one, linked to the head)",
            head.seq
        )));
    } else if head.hash != last_hash {
        report.problems.push(mismatch(format!(
            "last record (line {last_line}, seq {last_seq}) does not match the signed head hash: edited"
        )));
    } else if head.log_len != sp.complete_len {
        report.problems.push(mismatch(format!(
            "log is {} bytes but the signed head says {}: edited",
            sp.complete_len, head.log_len
        )));
    }
    report.head = Some(head);
    Ok(())
}

/// What [`read_signed`] says when the file does not exist.
const NOT_THERE: &str = "missing";

/// head.json or pending.json: Ok(Ok(head)) when present and validly
/// signed, Ok(Err(reason)) when missing ([`NOT_THERE`]), unparsable or badly
/// signed; Err when it cannot be read safely (a link, a FIFO, too big).
fn read_signed(
    dir: &Path,
    name: &'static str,
    key: &VerifyingKey,
    pending: bool,
) -> Result<Result<Head, String>, AuditError> {
    let Some(bytes) = read_capped(&dir.join(name), MAX_SMALL)? else {
        return Ok(Err(NOT_THERE.into()));
    };
    let head: Head = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) => return Ok(Err(format!("{name} is not a valid head: {e}"))),
    };
    let checked = if pending {
        head.check_pending(key)
    } else {
        head.check(key)
    };
    Ok(checked.map(|()| head))
}

/// genesis.json, when there, must name the log's first record.
fn check_genesis(
    dir: &Path,
    key: &VerifyingKey,
    hashes: &[String],
    report: &mut Report,
) -> Result<(), AuditError> {
    let Some(bytes) = read_capped(&dir.join(GENESIS), MAX_SMALL)? else {
        return Ok(());
    };
    let bad = |detail: String| Problem {
        file: GENESIS,
        line: 0,
        kind: ProblemKind::BadHeadSignature,
        detail,
    };
    let genesis: Genesis = match serde_json::from_slice(&bytes) {
        Ok(g) => g,
        Err(e) => {
            report.problems.push(bad(format!(
                "genesis.json is not a valid genesis marker: {e}"
            )));
            return Ok(());
        }
    };
    if let Err(why) = genesis.check(key) {
        report.problems.push(bad(why));
        return Ok(());
    }
    let short = &genesis.first_hash[..genesis.first_hash.len().min(16)];
    match hashes.first() {
        None => report.problems.push(Problem {
            file: GENESIS,
            line: 0,
            kind: ProblemKind::Missing,
            detail: format!(
                "genesis.json says this trail was started ({}, first record {short}) but log.jsonl {}{}: the trail was removed",
                genesis.ts,
                if report.log_exists { "has no records" } else { "is missing" },
                if report.head.is_none() { " and so is head.json" } else { "" },
            ),
        }),
        Some(first) if *first != genesis.first_hash => report.problems.push(Problem {
            file: LOG,
            line: 1,
            kind: ProblemKind::Missing,
            detail: format!(
                "line 1 is not the trail's first record (genesis.json names {short}, started {}): the log was replaced or its beginning removed",
                genesis.ts
            ),
        }),
        Some(_) => {}
    }
    report.genesis = Some(genesis);
    Ok(())
}
