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

mod append;
mod error;
mod event;
mod format;
mod fsutil;
mod head;
mod verify;

pub use append::{Appended, AuditLog};
pub use error::AuditError;
pub use event::{Decision, Event};
pub use format::MAX_LINE;
pub use head::{Head, key_id};
pub use verify::{Problem, ProblemKind, Record, Report, read, verify};
