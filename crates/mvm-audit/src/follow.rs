//! Reading the log as it grows (`mvmctl audit --follow`), without the lock:
//! writers only ever append whole lines, so everything up to the last '\n'
//! is stable, and a line without its '\n' yet is left for the next poll.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::append::LOG;
use crate::format::sha256_hex;
use crate::fsutil::{MAX_LOG, open_read};
use crate::verify::{Record, parse_record};

/// Yields the complete records appended to `dir/log.jsonl` since the last
/// [`Follower::poll`], starting from line 1. A missing log is empty (it may
/// be created later). It starts again from line 1, saying so, when the log
/// is removed, shrinks, is replaced by another file (inode), or the last
/// line it returned is no longer where it was (rewritten in place).
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    /// Bytes consumed: always just after a '\n'.
    offset: u64,
    /// Lines consumed.
    line: usize,
    /// (dev, inode) of the file being read.
    file_id: Option<(u64, u64)>,
    /// Start offset and sha256 of the last line consumed.
    last: Option<(u64, String)>,
}

/// What one poll found.
#[derive(Debug, Default)]
pub struct Followed {
    pub records: Vec<Record>,
    /// The log was removed, truncated, replaced or rewritten since the last
    /// poll: `records` (if any) start again from line 1.
    pub restarted: bool,
}

impl Follower {
    pub fn new(dir: &Path) -> Follower {
        Follower {
            path: dir.join(LOG),
            offset: 0,
            line: 0,
            file_id: None,
            last: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reset(&mut self) {
        self.offset = 0;
        self.line = 0;
        self.last = None;
    }

    /// New complete records. A malformed line is returned as
    /// [`AuditError::Malformed`] naming it, on a poll of its own (records
    /// before it come first), and is then skipped: the next poll goes on
    /// after it.
    pub fn poll(&mut self) -> Result<Followed, AuditError> {
        let mut out = Followed::default();
        // Never through a link, never blocking on a FIFO, never past 1 GiB.
        let mut f = match open_read(&self.path, MAX_LOG)? {
            Some((f, _)) => f,
            None => {
                if self.file_id.take().is_some() || self.offset > 0 {
                    self.reset();
                    out.restarted = true;
                }
                return Ok(out);
            }
        };
        let meta = f
            .metadata()
            .map_err(|e| AuditError::io(&self.path, "stat", e))?;
        let id = (meta.dev(), meta.ino());
        let len = meta.len();
        let replaced = self.file_id.is_some_and(|old| old != id);
        if replaced || len < self.offset || !self.last_still_there(&mut f)? {
            self.reset();
            out.restarted = true;
        }
        self.file_id = Some(id);
        if len == self.offset {
            return Ok(out);
        }
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(self.offset))
            .and_then(|_| f.by_ref().take(len - self.offset).read_to_end(&mut bytes))
            .map_err(|e| AuditError::io(&self.path, "read", e))?;
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
            return Ok(out);
        };
        for line in bytes[..end].split(|&b| b == b'\n') {
            let start = self.offset;
            match parse_record(line, self.line + 1, &self.path) {
                Ok(rec) => {
                    self.last = Some((start, rec.hash.clone()));
                    out.records.push(rec);
                }
                Err(e) => {
                    if !out.records.is_empty() || out.restarted {
                        // Report the bad line on its own next time, so nothing here is lost.
                        return Ok(out);
                    }
                    self.last = Some((start, sha256_hex(line)));
                    self.offset += line.len() as u64 + 1;
                    self.line += 1;
                    return Err(e);
                }
            }
            self.offset += line.len() as u64 + 1;
            self.line += 1;
        }
        Ok(out)
    }

    /// Is the last line consumed still at the same place with the same bytes?
    fn last_still_there(&self, f: &mut File) -> Result<bool, AuditError> {
        let Some((start, hash)) = &self.last else {
            return Ok(true);
        };
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(*start))
            .and_then(|_| f.by_ref().take(self.offset - start).read_to_end(&mut bytes))
            .map_err(|e| AuditError::io(&self.path, "read", e))?;
        Ok(bytes.pop() == Some(b'\n') && sha256_hex(&bytes) == *hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, Event};
    use ed25519_dalek::SigningKey;
    use std::io::Write;

    fn log(dir: &Path) -> AuditLog {
        AuditLog::open(dir, SigningKey::from_bytes(&[3u8; 32])).unwrap()
    }

    fn seqs(f: &Followed) -> Vec<u64> {
        f.records.iter().map(|r| r.seq).collect()
    }

    fn append_raw(dir: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(LOG))
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    #[test]
    fn yields_only_new_records_and_waits_for_the_log() {
        let t = tempfile::tempdir().unwrap();
        let mut f = Follower::new(t.path());
        let none = f.poll().unwrap();
        assert!(none.records.is_empty() && !none.restarted);
        let l = log(t.path());
        l.append(Some("a"), &Event::Down {}).unwrap();
        l.append(None, &Event::Down {}).unwrap();
        let got = f.poll().unwrap();
        assert_eq!(seqs(&got), [1, 2]);
        assert!(!got.restarted);
        assert_eq!(got.records[0].instance.as_deref(), Some("a"));
        assert_eq!(got.records[1].line, 2);
        assert!(f.poll().unwrap().records.is_empty());
        l.append(None, &Event::Down {}).unwrap();
        let got = f.poll().unwrap();
        assert_eq!(seqs(&got), [3]);
        assert_eq!(got.records[0].line, 3);
    }

    #[test]
    fn a_partial_line_waits_for_its_newline() {
        let t = tempfile::tempdir().unwrap();
        log(t.path()).append(None, &Event::Down {}).unwrap();
        let mut f = Follower::new(t.path());
        assert_eq!(seqs(&f.poll().unwrap()), [1]);
        let whole = std::fs::read(t.path().join(LOG)).unwrap();
        log(t.path()).append(None, &Event::Down {}).unwrap();
        let bytes = std::fs::read(t.path().join(LOG)).unwrap();
        let second = &bytes[whole.len()..];
        // Put the file back to one record plus half of the second.
        std::fs::write(t.path().join(LOG), &bytes[..whole.len() + 10]).unwrap();
        assert!(f.poll().unwrap().records.is_empty());
        append_raw(t.path(), &second[10..]);
        let got = f.poll().unwrap();
        assert_eq!(seqs(&got), [2]);
        assert!(!got.restarted);
        assert_eq!(got.records[0].raw.as_bytes(), &second[..second.len() - 1]);
    }

    #[test]
    fn restarts_when_truncated_replaced_rewritten_or_removed() {
        let t = tempfile::tempdir().unwrap();
        let l = log(t.path());
        for _ in 0..3 {
            l.append(None, &Event::Down {}).unwrap();
        }
        let mut f = Follower::new(t.path());
        assert_eq!(seqs(&f.poll().unwrap()), [1, 2, 3]);
        let path = t.path().join(LOG);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        // Shrank.
        std::fs::write(&path, format!("{}\n", lines[0])).unwrap();
        let got = f.poll().unwrap();
        assert!(got.restarted);
        assert_eq!(seqs(&got), [1]);

        // Replaced by another file (new inode) of the same content and more.
        let other = t.path().join("other");
        std::fs::write(&other, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let got = f.poll().unwrap();
        assert!(got.restarted);
        assert_eq!(seqs(&got), [1, 2]);

        // Rewritten in place, longer: line 2 is not what it was.
        let edited = lines[1].replace("\"down\"", "\"downn\"");
        let rewritten = format!("{}\n{edited}\n{}\n", lines[0], lines[2]);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all(rewritten.as_bytes())
            .unwrap();
        let got = f.poll().unwrap();
        assert!(got.restarted);
        assert_eq!(seqs(&got), [1, 2, 3]);
        assert!(got.records[1].raw.contains("downn"));

        // Removed, then created again.
        std::fs::remove_file(&path).unwrap();
        let got = f.poll().unwrap();
        assert!(got.restarted && got.records.is_empty());
        l.append(None, &Event::Down {}).unwrap();
        let got = f.poll().unwrap();
        assert!(!got.restarted);
        // The writer found the signed head describing a log that is gone,
        // and said so before its own record.
        let events: Vec<_> = got
            .records
            .iter()
            .map(|r| r.event["event"].clone())
            .collect();
        assert_eq!(events, ["head_diverged", "down"]);
    }

    #[test]
    fn a_malformed_line_is_reported_once_then_skipped() {
        let t = tempfile::tempdir().unwrap();
        let l = log(t.path());
        l.append(None, &Event::Down {}).unwrap();
        append_raw(t.path(), b"not json\n");
        let mut f = Follower::new(t.path());
        assert_eq!(seqs(&f.poll().unwrap()), [1]);
        match f.poll() {
            Err(AuditError::Malformed { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(f.poll().unwrap().records.is_empty());
        append_raw(
            t.path(),
            b"{\"seq\":3,\"ts\":\"t\",\"prev\":\"p\",\"event\":\"down\"}\n",
        );
        let got = f.poll().unwrap();
        assert_eq!(seqs(&got), [3]);
        assert_eq!(got.records[0].line, 3);
    }
}
