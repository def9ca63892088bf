//! Secret references become opaque tokens before they reach the guest.
//!
//! The guest sees `NAME=mvm-secret-ref:<secret name>:<random>`; the raw
//! value never leaves the host. The random part makes each token unique
//! per instance start, so a token leaked from one instance's logs says
//! nothing about another instance and cannot be replayed against a host
//! broker once the instance is gone.

use rand::RngCore;

/// Prefix that marks a token, so a host-side broker can recognise one.
pub const TOKEN_PREFIX: &str = "mvm-secret-ref:";

/// 128 random bits: enough that tokens are never guessed or repeated.
const TOKEN_RANDOM_BYTES: usize = 16;

pub fn mint_token(secret_name: &str) -> String {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{secret_name}:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_the_secret_and_differ() {
        let a = mint_token("api-key");
        let b = mint_token("api-key");
        assert!(a.starts_with("mvm-secret-ref:api-key:"));
        assert_eq!(a.len(), "mvm-secret-ref:api-key:".len() + 32);
        assert_ne!(a, b);
    }
}
