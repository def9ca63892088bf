//! Tamper-evident audit trail: hash-chained JSON Lines with a signed head.
//!
//! Layout of the audit dir (0700; files 0600):
//!
//! - `log.jsonl`: one JSON object per line, at most 16 KiB, printable ASCII
//!   only (every other character, DEL included, is a `\uXXXX` escape, so a
//!   stored line is safe to print and a printed copy hashes the same):
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
//! - `pending.json`: the same form, signed over
//!   `"mvm-audit-pending-v1\n{seq}\n{hash}\n{log_len}"`, naming the record a
//!   writer is about to append. Left in place afterwards (a stale one is harmless).
//! - `genesis.json`: `{"first_hash","ts","key_id","sig"}`, signed over
//!   `"mvm-audit-genesis-v1\n{first_hash}\n{ts}"`: written once, when the
//!   trail's first record is (or, for an older trail, by its next append), and
//!   never replaced. It says the trail was started and with which record.
//! - `lock`: writers hold `flock(LOCK_EX)` on it for a whole append.
//!
//! Each record is: pending.json staged (fsync, rename), then one `write()` on
//! an `O_APPEND` fd followed by `fdatasync`, then head.json staged and renamed.
//! A writer that crashed mid-write leaves a line with no `'\n'` (torn); [`verify`]
//! reports it without failing, and the next append truncates it and first writes
//! a [`Event::Repair`] record naming the dropped bytes' length and hash.
//!
//! A writer that stopped after the record's `fdatasync` but before the head's rename
//! leaves a log with exactly one complete, well-linked record more than the signed
//! head describes, and a pending.json naming that record's seq, hash and the log's
//! length after it. [`verify`] reports that as [`ProblemKind::HeadLags`] (not ok:
//! the head does not cover the record yet). The next append adopts it without a
//! record of its own: it signs a head covering it, then appends. The same shape
//! without a matching pending.json (a record added by hand: nobody without the key
//! can sign one) is [`ProblemKind::HeadMismatch`], and the next writer records a
//! divergence.
//!
//! Any other state (the head missing, replaced or badly signed; the log shorter,
//! longer or otherwise not continuing from the head; an empty log under a
//! genesis.json) is not something a crash leaves. The next writer continues the
//! chain from the last complete line but first appends [`Event::HeadDiverged`]
//! stating what the head said and what it found, and [`verify`] reports every such
//! record as [`ProblemKind::Diverged`]: signing a new head never hides tampering
//! the old one would have shown. A genesis.json whose first record is not the log's
//! first line (or with no log) is [`ProblemKind::Missing`], for good.
//!
//! Readers ([`verify`], [`read`], [`Follower`]) take the directory as untrusted:
//! they open without following symlinks or blocking on FIFOs, accept only regular
//! files, and cap sizes ([`MAX_LOG`] for the log, [`MAX_SMALL`] for the json files).
//!
//! Not detectable here: removing log, head and genesis together (a trail never
//! started looks the same), and rolling all files back to an earlier state. Both
//! need a copy or the last head's seq and hash kept off the host.
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

pub use append::{Appended, AuditLog, GENESIS};
pub use error::AuditError;
pub use event::{Decision, Event, MAX_PROGRAM, MediatedRequest};
pub use follow::{Followed, Follower};
pub use format::MAX_LINE;
pub use fsutil::{MAX_LOG, MAX_SMALL};
pub use head::{Genesis, Head, key_id};
pub use verify::{Problem, ProblemKind, Record, Report, read, verify};
