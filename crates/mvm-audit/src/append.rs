//! The writer. Everything happens under an exclusive flock on `dir/lock`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::format::{ZERO_HASH, encode_line, now_rfc3339, sha256_hex};
use crate::fsutil::{
    MAX_LOG, MAX_SMALL, ensure_dir, lock, open_private, read_capped, write_staged,
};
use crate::head::{Genesis, Head};
use crate::{AuditError, Event};

pub const LOG: &str = "log.jsonl";
pub const HEAD: &str = "head.json";
pub const PENDING: &str = "pending.json";
pub const GENESIS: &str = "genesis.json";

pub struct AuditLog {
    dir: PathBuf,
    key: SigningKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: String,
}

impl std::fmt::Debug for AuditLog {
    // Hand-written so the signing key can never end up in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Create `dir` (0700) if needed. Files are created lazily on first append.
    pub fn open(dir: &Path, key: SigningKey) -> Result<AuditLog, AuditError> {
        ensure_dir(dir)?;
        Ok(AuditLog {
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn append(&self, instance: Option<&str>, event: &Event) -> Result<Appended, AuditError> {
        let _lock = lock(&self.dir)?;
        let path = self.dir.join(LOG);
        let mut log = open_private(&path, true, true)?;
        let p = self.previous(&mut log, &path)?;
        let (mut seq, mut prev, mut len) = (p.seq, p.hash, p.len);
        // The hash of a seq 1 record written by this append, for genesis.json.
        let mut first = None;
        if p.adopt {
            // Sign the crashed writer's record before anything else: if this
            // append crashed too, its pending.json would no longer name that
            // record, and the record would then look forged.
            self.write_head(seq, &prev, len)?;
        }
        if let Some(event) = p.diverged {
            (seq, prev, len) =
                self.write_record(&mut log, &path, seq + 1, &prev, len, None, &event)?;
            first = first.or((seq == 1).then(|| prev.clone()));
        }
        if let Some((dropped, complete_len)) = torn_tail(&mut log, &path)? {
            // A writer died mid-write: drop the partial line, then say so in the chain.
            log.set_len(complete_len)
                .map_err(|e| AuditError::io(&path, "truncate torn line", e))?;
            len = complete_len;
            let repair = Event::Repair {
                dropped_bytes: dropped.len() as u64,
                dropped_sha256: sha256_hex(&dropped),
            };
            (seq, prev, len) =
                self.write_record(&mut log, &path, seq + 1, &prev, len, None, &repair)?;
            first = first.or((seq == 1).then(|| prev.clone()));
        }
        let (seq, hash, _) =
            self.write_record(&mut log, &path, seq + 1, &prev, len, instance, event)?;
        first = first.or((seq == 1).then(|| hash.clone()));
        self.ensure_genesis(&mut log, &path, first)?;
        Ok(Appended { seq, hash })
    }

    /// pending.json (signed, durable), then the record, then head.json: a
    /// record the head does not cover is a crashed writer's only if a
    /// pending.json signed before it names it.
    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &self,
        log: &mut File,
        path: &Path,
        seq: u64,
        prev: &str,
        len: u64,
        instance: Option<&str>,
        event: &Event,
    ) -> Result<(u64, String, u64), AuditError> {
        let line = encode_line(seq, &now_rfc3339(), prev, instance, event)?;
        let hash = sha256_hex(&line);
        let mut buf = line;
        buf.push(b'\n');
        let new_len = len + buf.len() as u64;
        let pending = Head::sign_pending(&self.key, seq, hash.clone(), new_len);
        let json = serde_json::to_vec(&pending).map_err(AuditError::Encode)?;
        write_staged(&self.dir, PENDING, &json)?;
        // One write() on an O_APPEND fd: a crash leaves at worst a torn last line.
        let n = log
            .write(&buf)
            .map_err(|e| AuditError::io(path, "append", e))?;
        if n != buf.len() {
            return Err(AuditError::ShortWrite {
                path: path.to_path_buf(),
                written: n,
                len: buf.len(),
            });
        }
        log.sync_data()
            .map_err(|e| AuditError::io(path, "fdatasync", e))?;
        self.write_head(seq, &hash, new_len)?;
        Ok((seq, hash, new_len))
    }

    fn write_head(&self, seq: u64, hash: &str, log_len: u64) -> Result<(), AuditError> {
        let head = Head::sign(&self.key, seq, hash.to_string(), log_len);
        let json = serde_json::to_vec(&head).map_err(AuditError::Encode)?;
        write_staged(&self.dir, HEAD, &json)
    }

    /// Written once, by the append that finds it missing: the one writing
    /// seq 1, or the first append of a trail from before genesis.json
    /// existed. Never replaced: a new log under an old genesis.json is
    /// exactly what verify must see.
    fn ensure_genesis(
        &self,
        log: &mut File,
        path: &Path,
        first: Option<String>,
    ) -> Result<(), AuditError> {
        if std::fs::symlink_metadata(self.dir.join(GENESIS)).is_ok() {
            return Ok(());
        }
        let first_hash = match first {
            Some(h) => h,
            None => {
                let mut line = Vec::new();
                log.seek(SeekFrom::Start(0))
                    .and_then(|_| {
                        BufReader::new(Read::by_ref(log).take(MAX_LOG)).read_until(b'\n', &mut line)
                    })
                    .map_err(|e| AuditError::io(path, "read first line", e))?;
                if line.pop() != Some(b'\n') {
                    return Ok(());
                }
                sha256_hex(&line)
            }
        };
        let genesis = Genesis::sign(&self.key, first_hash, now_rfc3339());
        let json = serde_json::to_vec(&genesis).map_err(AuditError::Encode)?;
        write_staged(&self.dir, GENESIS, &json)
    }

    /// A signed file of ours, if it is there, parses and verifies.
    fn signed(&self, name: &str, pending: bool) -> Option<Head> {
        let bytes = read_capped(&self.dir.join(name), MAX_SMALL).ok()??;
        let h: Head = serde_json::from_slice(&bytes).ok()?;
        let vk = self.key.verifying_key();
        let ok = if pending {
            h.check_pending(&vk)
        } else {
            h.check(&vk)
        };
        ok.is_ok().then_some(h)
    }

    /// The last complete record and the log's complete length, and what the
    /// state the writer found calls for: nothing (the signed head describes
    /// the file), adopting one record a crashed writer left (the head lags
    /// it and pending.json names it), or a divergence record first.
    fn previous(&self, log: &mut File, path: &Path) -> Result<Prev, AuditError> {
        let file_len = log
            .metadata()
            .map_err(|e| AuditError::io(path, "stat", e))?
            .len();
        let head = self.signed(HEAD, false);
        // Fast path: the head we (or another writer) signed still describes the file.
        if let Some(h) = &head
            && h.log_len == file_len
        {
            return Ok(Prev {
                seq: h.seq,
                hash: h.hash.clone(),
                len: file_len,
                diverged: None,
                adopt: false,
            });
        }
        let tail = read_tail(log, path, file_len)?;
        // Complete part ends at the last '\n'.
        let complete = match tail.bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => &tail.bytes[..=i],
            None => &[][..],
        };
        let complete_len = tail.start + complete.len() as u64;
        let body = &complete[..complete.len().saturating_sub(1)];
        let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = &body[line_start..];
        let (seq, hash, prev) = if line.is_empty() {
            (0, ZERO_HASH.to_string(), String::new())
        } else {
            let v = serde_json::from_slice::<serde_json::Value>(line).ok();
            let seq = v
                .as_ref()
                .and_then(|v| v.get("seq")?.as_u64())
                .ok_or_else(|| AuditError::Malformed {
                    path: path.to_path_buf(),
                    line: 0,
                    detail:
                        "last complete record has no numeric seq; refusing to extend a damaged log"
                            .into(),
                })?;
            let prev = v
                .as_ref()
                .and_then(|v| Some(v.get("prev")?.as_str()?.to_string()))
                .unwrap_or_default();
            (seq, sha256_hex(line), prev)
        };
        let line_offset = tail.start + line_start as u64;
        let (head_seq, head_hash, head_len) = match &head {
            Some(h) => (h.seq, h.hash.as_str(), h.log_len),
            None => (0, ZERO_HASH, 0),
        };
        // What a crash can leave: nothing new but a torn tail, or one
        // record appended whose head was never rewritten, named by the
        // pending.json signed before it was written. An empty log with no
        // head is a new trail, unless genesis.json says one was started.
        let removed =
            head.is_none() && seq == 0 && std::fs::symlink_metadata(self.dir.join(GENESIS)).is_ok();
        let unchanged =
            !removed && complete_len == head_len && seq == head_seq && hash == head_hash;
        let lags_by_one = seq == head_seq + 1
            && prev == head_hash
            && line_offset == head_len
            && self
                .signed(PENDING, true)
                .is_some_and(|p| p.seq == seq && p.hash == hash && p.log_len == complete_len);
        let diverged = (!unchanged && !lags_by_one).then(|| Event::HeadDiverged {
            head_seq: head.as_ref().map(|h| h.seq),
            head_log_len: head.as_ref().map(|h| h.log_len),
            found_seq: seq,
            found_log_len: complete_len,
        });
        Ok(Prev {
            seq,
            hash,
            len: complete_len,
            diverged,
            adopt: !unchanged && lags_by_one,
        })
    }
}

struct Prev {
    seq: u64,
    hash: String,
    len: u64,
    diverged: Option<Event>,
    adopt: bool,
}

struct Tail {
    start: u64,
    bytes: Vec<u8>,
}

/// Enough of the end of the file to hold a torn line plus the last full one
/// (each <= 16 KiB); the whole file if that isn't enough.
fn read_tail(log: &mut File, path: &Path, file_len: u64) -> Result<Tail, AuditError> {
    let mut window: u64 = 64 * 1024;
    loop {
        let start = file_len.saturating_sub(window);
        let mut bytes = Vec::new();
        log.seek(SeekFrom::Start(start))
            .and_then(|_| {
                Read::by_ref(log)
                    .take(file_len - start)
                    .read_to_end(&mut bytes)
            })
            .map_err(|e| AuditError::io(path, "read tail", e))?;
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
        if start == 0 || newlines >= 2 {
            return Ok(Tail { start, bytes });
        }
        window *= 4;
    }
}

/// If the file doesn't end in '\n', the dropped partial bytes and the length to keep.
fn torn_tail(log: &mut File, path: &Path) -> Result<Option<(Vec<u8>, u64)>, AuditError> {
    let file_len = log
        .metadata()
        .map_err(|e| AuditError::io(path, "stat", e))?
        .len();
    if file_len == 0 {
        return Ok(None);
    }
    let tail = read_tail(log, path, file_len)?;
    if tail.bytes.last() == Some(&b'\n') {
        return Ok(None);
    }
    let keep = tail
        .bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Ok(Some((
        tail.bytes[keep..].to_vec(),
        tail.start + keep as u64,
    )))
}
