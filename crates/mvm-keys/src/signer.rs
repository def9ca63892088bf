use ed25519_dalek::{Signer as _, SigningKey};

use crate::PublicKey;

/// A loaded private key. Debug shows the name and key id, never the key.
pub struct Signer {
    pub name: String,
    key: SigningKey,
}

impl Signer {
    pub(crate) fn new(name: String, key: SigningKey) -> Self {
        Signer { name, key }
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey::new(self.key.verifying_key(), Some(self.name.clone()))
    }

    /// For crates that need the dalek type (the audit log).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &self.public().key_id())
            .finish_non_exhaustive()
    }
}
