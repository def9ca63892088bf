//! The signed files next to the log:
//!
//! - head.json: the signed pointer to the last record. Detects tail
//!   truncation and editing of the last record, which the hash chain alone
//!   cannot.
//! - pending.json: the same form, signed before a record is written, naming
//!   the record about to be appended. It is what lets a record the head does
//!   not cover yet count as a crashed writer's, not a forger's.
//! - genesis.json: written once, with the trail's first record: the trail
//!   was started, and with which record. Detects the log (and head) removed.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::format::{hex, sha256_hex, unhex};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub log_len: u64,
    pub key_id: String,
    /// Hex Ed25519 signature over [`message`] (head.json) or
    /// [`pending_message`] (pending.json).
    pub sig: String,
}

/// Domain-separated so a head signature can't be replayed as anything else.
pub fn message(seq: u64, hash: &str, log_len: u64) -> String {
    format!("mvm-audit-head-v1\n{seq}\n{hash}\n{log_len}")
}

/// What pending.json is signed over: its own domain, so a pending
/// signature (for a record that may never have been written) can never
/// pass as a head.
pub fn pending_message(seq: u64, hash: &str, log_len: u64) -> String {
    format!("mvm-audit-pending-v1\n{seq}\n{hash}\n{log_len}")
}

/// First 16 hex chars of sha256 of the public key bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_string()
}

fn sig_hex(key: &SigningKey, msg: &str) -> String {
    hex(&key.sign(msg.as_bytes()).to_bytes())
}

/// Ok(()) or a human reason naming `what` (the file).
fn check_sig(
    what: &str,
    key_id_field: &str,
    sig: &str,
    msg: &str,
    key: &VerifyingKey,
) -> Result<(), String> {
    let want = key_id(key);
    if key_id_field != want {
        return Err(format!(
            "{what} is signed by key {key_id_field} but verifying with key {want}"
        ));
    }
    let bytes: [u8; 64] = unhex(sig)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} sig is not 64 hex-encoded bytes"))?;
    key.verify(msg.as_bytes(), &Signature::from_bytes(&bytes))
        .map_err(|_| format!("{what} signature does not verify"))
}

impl Head {
    pub fn sign(key: &SigningKey, seq: u64, hash: String, log_len: u64) -> Head {
        Head {
            seq,
            key_id: key_id(&key.verifying_key()),
            sig: sig_hex(key, &message(seq, &hash, log_len)),
            hash,
            log_len,
        }
    }

    /// A pending.json: the record `seq` with `hash`, leaving the log `log_len` long.
    pub fn sign_pending(key: &SigningKey, seq: u64, hash: String, log_len: u64) -> Head {
        Head {
            seq,
            key_id: key_id(&key.verifying_key()),
            sig: sig_hex(key, &pending_message(seq, &hash, log_len)),
            hash,
            log_len,
        }
    }

    /// Ok(()) or a human reason.
    pub fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        let msg = message(self.seq, &self.hash, self.log_len);
        check_sig("head", &self.key_id, &self.sig, &msg, key)
    }

    /// As [`Head::check`], for a pending.json.
    pub fn check_pending(&self, key: &VerifyingKey) -> Result<(), String> {
        let msg = pending_message(self.seq, &self.hash, self.log_len);
        check_sig("pending.json", &self.key_id, &self.sig, &msg, key)
    }
}

/// genesis.json: `{"first_hash","ts","key_id","sig"}`, `sig` over
/// `"mvm-audit-genesis-v1\n{first_hash}\n{ts}"`. `ts` is when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// sha256 of the trail's first record line (seq 1).
    pub first_hash: String,
    pub ts: String,
    pub key_id: String,
    pub sig: String,
}

pub fn genesis_message(first_hash: &str, ts: &str) -> String {
    format!("mvm-audit-genesis-v1\n{first_hash}\n{ts}")
}

impl Genesis {
    pub fn sign(key: &SigningKey, first_hash: String, ts: String) -> Genesis {
        Genesis {
            key_id: key_id(&key.verifying_key()),
            sig: sig_hex(key, &genesis_message(&first_hash, &ts)),
            first_hash,
            ts,
        }
    }

    pub fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        let msg = genesis_message(&self.first_hash, &self.ts);
        check_sig("genesis.json", &self.key_id, &self.sig, &msg, key)
    }
}
