//! The checker, and a reader for viewers.

use std::collections::HashSet;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::append::{HEAD, LOG};
use crate::format::{ZERO_HASH, sha256_hex};
use crate::head::Head;
use crate::{AuditError, Event};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Malformed,
    BadLink,
    HeadMismatch,
    BadHeadSignature,
    /// Incomplete last line: a writer crashed mid-write; the next append repairs it.
    Torn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in log.jsonl (0 for head.json problems not tied to a line).
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
}

impl Report {
    /// True when nothing but a torn last line (which the next writer repairs) was found.
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

fn read_log(dir: &Path) -> Result<Vec<u8>, AuditError> {
    let path = dir.join(LOG);
    match std::fs::read(&path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(AuditError::io(path, "read", e)),
    }
}

/// All complete records in order. A torn last line is skipped; a malformed line is an error.
pub fn read(dir: &Path) -> Result<Vec<Record>, AuditError> {
    let bytes = read_log(dir)?;
    let path = dir.join(LOG);
    let mut out = Vec::new();
    for (i, line) in split(&bytes).lines.into_iter().enumerate() {
        let bad = |detail: &str| AuditError::Malformed {
            path: path.clone(),
            line: i + 1,
            detail: detail.to_string(),
        };
        let v: Value = serde_json::from_slice(line).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let seq = v
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no numeric seq"))?;
        let str_field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        out.push(Record {
            line: i + 1,
            seq,
            ts: str_field("ts").ok_or_else(|| bad("no ts"))?,
            prev: str_field("prev").ok_or_else(|| bad("no prev"))?,
            hash: sha256_hex(line),
            instance: str_field("instance"),
            event: v,
        });
    }
    Ok(out)
}

/// Check the chain and the signed head. Problems are collected, not fatal;
/// Err only when the files can't be read at all.
pub fn verify(dir: &Path, key: &VerifyingKey) -> Result<Report, AuditError> {
    let bytes = read_log(dir)?;
    let sp = split(&bytes);
    let mut report = Report::default();
    let parsed: Vec<Option<(u64, String)>> = sp
        .lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_slice(l).ok()?;
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
            line: sp.lines.len() + 1,
            kind: ProblemKind::Torn,
            detail: format!(
                "incomplete last line ({} bytes); the next append repairs it",
                t.len()
            ),
        });
    }
    check_head(dir, key, &sp, &hashes, &mut report)?;
    Ok(report)
}

fn check_head(
    dir: &Path,
    key: &VerifyingKey,
    sp: &Split<'_>,
    hashes: &[String],
    report: &mut Report,
) -> Result<(), AuditError> {
    let path = dir.join(HEAD);
    let last_line = sp.lines.len();
    let mismatch = |detail: String| Problem {
        line: last_line,
        kind: ProblemKind::HeadMismatch,
        detail,
    };
    let head: Head = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if last_line > 0 {
                report
                    .problems
                    .push(mismatch("log has records but head.json is missing".into()));
            }
            return Ok(());
        }
        Err(e) => return Err(AuditError::io(path, "read", e)),
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(h) => h,
            Err(e) => {
                report.problems.push(Problem {
                    line: 0,
                    kind: ProblemKind::BadHeadSignature,
                    detail: format!("head.json is not a valid head: {e}"),
                });
                return Ok(());
            }
        },
    };
    if let Err(why) = head.check(key) {
        report.problems.push(Problem {
            line: 0,
            kind: ProblemKind::BadHeadSignature,
            detail: why,
        });
        return Ok(());
    }
    let last_seq = report.last_seq.unwrap_or(0);
    let last_hash = hashes.last().map_or(ZERO_HASH, String::as_str);
    if head.seq > last_seq || head.log_len > sp.complete_len {
        report.problems.push(mismatch(format!(
            "log ends at seq {last_seq} but the signed head is seq {}: truncated",
            head.seq
        )));
    } else if head.seq < last_seq {
        report.problems.push(mismatch(format!(
            "log ends at seq {last_seq} but the signed head is seq {}: records after it are unsigned (appended by hand, or a writer crashed before updating the head)",
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
    Ok(())
}
