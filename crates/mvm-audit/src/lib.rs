//! Tamper-evident audit trail: hash-chained JSON Lines with a signed head.
//!
//! Layout of the audit dir (0700; files 0600):
//!
//! - `log.jsonl`: one JSON object per line, at most 16 KiB:
//!   `{"seq":1,"ts":"2026-12-02T20:57:37.123Z","prev":"<hex sha256>","instance":"web",
//!   "event":"up",...fields}`. `seq` starts at 1 and goes up by one; `prev` is the
//!   sha256 of the previous line's bytes without its `'\n'` (64 zeros for seq 1).
//!   A record's hash is sha256 of its line bytes. Events carry identifiers,
//!   hashes and outcomes, never payload values.
//! - `head.json`: `{"seq","hash","log_len","key_id","sig"}`: the last record's seq
//!   and hash and the log length after it, Ed25519-signed (hex) by the host audit
//!   key over `"mvm-audit-head-v1\n{seq}\n{hash}\n{log_len}"`. The chain catches
//!   edits, deletions and reordering inside the log; the head catches tail
//!   truncation and an edited last record. `key_id` = first 16 hex of sha256(pubkey).
//! - `lock`: writers hold `flock(LOCK_EX)` on it for a whole append.
//!
//! Each record is one `write()` on an `O_APPEND` fd followed by `fdatasync`, then the
//! head is staged and renamed. A writer that crashed mid-write leaves a line with no
//! `'\n'` (torn); [`verify`] reports it without failing, and the next append truncates
//! it and first writes a [`Event::Repair`] record naming the dropped bytes' length and hash.
//!
//! A writer that stopped after the record's `fdatasync` but before the head's rename
//! leaves a log with exactly one complete, well-linked record more than the signed
//! head describes. [`verify`] reports that as [`ProblemKind::HeadLags`] (not ok: no
//! signature covers that record yet, and anyone able to write the file could have
//! added it). The next append repairs it without a record of its own: the head no
//! longer matches the file's length, so the writer takes the last complete line as
//! the previous record, appends after it and signs a head covering both; verify is
//! then clean.
//!
//! Any other state (the head missing, replaced or badly signed; the log shorter,
//! longer or otherwise not continuing from the head) is not something a crash
//! leaves. The next writer continues the chain from the last complete line but
//! first appends [`Event::HeadDiverged`] stating what the head said and what it
//! found, and [`verify`] reports every such record as [`ProblemKind::Diverged`]:
//! signing a new head never hides tampering the old one would have shown.
//!
//! [`Follower`] reads the log as it grows, for viewers (`mvmctl audit --follow`).

mod append;
mod error;
mod event;
mod follow;
mod format;
mod fsutil;
mod head;
mod verify;

pub use append::{Appended, AuditLog};
pub use error::AuditError;
pub use event::{Decision, Event};
pub use follow::{Followed, Follower};
pub use format::MAX_LINE;
pub use head::{Head, key_id};
pub use verify::{Problem, ProblemKind, Record, Report, read, verify};
