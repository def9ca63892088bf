//! head.json: the signed pointer to the last record. Detects tail truncation
//! and editing of the last record, which the hash chain alone cannot.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::format::{hex, sha256_hex, unhex};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub log_len: u64,
    pub key_id: String,
    /// Hex Ed25519 signature over [`message`].
    pub sig: String,
}

/// Domain-separated so a head signature can't be replayed as anything else.
pub fn message(seq: u64, hash: &str, log_len: u64) -> String {
    format!("mvm-audit-head-v1\n{seq}\n{hash}\n{log_len}")
}

/// First 16 hex chars of sha256 of the public key bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_string()
}

impl Head {
    pub fn sign(key: &SigningKey, seq: u64, hash: String, log_len: u64) -> Head {
        let sig = key.sign(message(seq, &hash, log_len).as_bytes());
        Head {
            seq,
            key_id: key_id(&key.verifying_key()),
            sig: hex(&sig.to_bytes()),
            hash,
            log_len,
        }
    }

    /// Ok(()) or a human reason.
    pub fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        let want = key_id(key);
        if self.key_id != want {
            return Err(format!(
                "head is signed by key {} but verifying with key {want}",
                self.key_id
            ));
        }
        let bytes: [u8; 64] = unhex(&self.sig)
            .and_then(|b| b.try_into().ok())
            .ok_or("head sig is not 64 hex-encoded bytes")?;
        key.verify(
            message(self.seq, &self.hash, self.log_len).as_bytes(),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| "head signature does not verify".to_string())
    }
}
