use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::KeyError;

/// A public key and an optional comment (who it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key: VerifyingKey,
    pub comment: Option<String>,
}

impl PublicKey {
    pub fn new(key: VerifyingKey, comment: Option<String>) -> Self {
        PublicKey { key, comment }
    }

    /// One line: `ed25519 <base64 of 32 bytes> <comment>`.
    pub fn to_text(&self) -> String {
        let b64 = STANDARD.encode(self.key.as_bytes());
        match &self.comment {
            Some(c) if !c.is_empty() => format!("ed25519 {b64} {c}"),
            _ => format!("ed25519 {b64}"),
        }
    }

    /// Parse the text form; `where_` names the source (file, policy entry)
    /// in the error.
    pub fn parse_at(text: &str, where_: &str) -> Result<Self, KeyError> {
        let bad = |detail: String| KeyError::BadPublic {
            where_: where_.to_string(),
            detail,
        };
        let line = text.trim();
        if line.contains('\n') {
            return Err(bad("more than one line".into()));
        }
        let (alg, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(format!("expected `ed25519 <base64>`, got {line:?}")))?;
        if alg != "ed25519" {
            return Err(bad(format!(
                "algorithm {alg:?} is not supported, only ed25519"
            )));
        }
        let rest = rest.trim_start();
        let (b64, comment) = match rest.split_once(char::is_whitespace) {
            Some((b, c)) => (b, Some(c.trim().to_string()).filter(|c| !c.is_empty())),
            None => (rest, None),
        };
        let raw = STANDARD
            .decode(b64)
            .map_err(|e| bad(format!("key is not base64: {e}")))?;
        let raw: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("key is {} bytes, an Ed25519 key is 32", raw.len())))?;
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|e| bad(format!("not a valid Ed25519 point: {e}")))?;
        Ok(PublicKey { key, comment })
    }

    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Self::parse_at(text, "public key")
    }

    /// First 16 hex chars of sha256 of the 32 raw bytes.
    pub fn key_id(&self) -> String {
        let d = Sha256::digest(self.key.as_bytes());
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Comment if there is one, else the key id: how a person names it.
    pub fn label(&self) -> String {
        self.comment.clone().unwrap_or_else(|| self.key_id())
    }

    /// Strict verification (no malleable signatures).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}
