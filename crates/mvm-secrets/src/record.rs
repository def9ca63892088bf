//! One secret file, `<name>.secret`: a small JSON object holding the
//! metadata and the value encrypted with XChaCha20-Poly1305 under the
//! store key. The name is authenticated as associated data, so a file
//! copied to another name does not decrypt.
//!
//! This module is where a secret file's bytes are parsed; nothing else
//! reads them.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::SecretError;
use crate::fsutil;
use crate::key::KeyBytes;

pub(crate) const FORMAT: &str = "mvm-secret/1";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    name: String,
    created: String,
    last_used: Option<String>,
    nonce: String,
    ciphertext: String,
}

pub(crate) struct Record {
    pub name: String,
    pub created: OffsetDateTime,
    pub last_used: Option<OffsetDateTime>,
    nonce: [u8; 24],
    ciphertext: Vec<u8>,
}

fn aad(name: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(FORMAT.len() + 1 + name.len());
    a.extend_from_slice(FORMAT.as_bytes());
    a.push(0);
    a.extend_from_slice(name.as_bytes());
    a
}

/// Now, to the second: the times are for people.
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Formatting a UTC time as RFC 3339 fails only for years past 9999.
    t.format(&Rfc3339).unwrap_or_else(|_| "invalid-time".into())
}

impl Record {
    pub fn seal(name: &str, value: &[u8], key: &KeyBytes) -> Result<Record, SecretError> {
        let nonce: [u8; 24] = fsutil::random_bytes()?;
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &aad(name),
                },
            )
            // Only fails for plaintexts of gigabytes; values are capped far below.
            .map_err(|_| SecretError::TooLarge {
                name: name.into(),
                len: value.len(),
                max: crate::MAX_VALUE,
            })?;
        Ok(Record {
            name: name.into(),
            created: now(),
            last_used: None,
            nonce,
            ciphertext,
        })
    }

    /// Decrypt as the secret `name` (the file's name, not the name field:
    /// a file moved to another name then fails here).
    pub fn open(
        &self,
        name: &str,
        key: &KeyBytes,
        path: &Path,
        key_path: &Path,
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        cipher
            .decrypt(
                XNonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad(name),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Decrypt {
                name: name.into(),
                path: path.into(),
                key: key_path.into(),
            })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            format: FORMAT.into(),
            name: self.name.clone(),
            created: rfc3339(self.created),
            last_used: self.last_used.map(rfc3339),
            nonce: STANDARD.encode(self.nonce),
            ciphertext: STANDARD.encode(&self.ciphertext),
        };
        let mut out = serde_json::to_vec_pretty(&wire).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<Record, SecretError> {
        let bad = |detail: String| SecretError::Damaged {
            path: path.into(),
            detail,
        };
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if wire.format != FORMAT {
            return Err(bad(format!(
                "format {:?}, this mvm reads {FORMAT:?}",
                wire.format
            )));
        }
        let time = |s: &str, field: &str| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|e| bad(format!("{field}: {e}")))
        };
        let created = time(&wire.created, "created")?;
        let last_used = match &wire.last_used {
            Some(s) => Some(time(s, "last_used")?),
            None => None,
        };
        let nonce = STANDARD
            .decode(&wire.nonce)
            .ok()
            .and_then(|n| <[u8; 24]>::try_from(n.as_slice()).ok())
            .ok_or_else(|| bad("nonce is not 24 bytes of base64".into()))?;
        let ciphertext = STANDARD
            .decode(&wire.ciphertext)
            .map_err(|e| bad(format!("ciphertext: {e}")))?;
        Ok(Record {
            name: wire.name,
            created,
            last_used,
            nonce,
            ciphertext,
        })
    }
}
