//! Ed25519 key files under the mvm home (`$MVM_HOME/keys`).
//!
//! A key `<name>` is two files: `<name>.key` (PKCS#8 PEM, 0600, never
//! printed) and `<name>.pub` (one line, [`PublicKey::to_text`]). Names
//! starting `mvm-` are reserved for keys mvm makes itself, such as the
//! host audit key.

mod error;
mod public;
mod ring;
mod signer;

pub use error::KeyError;
pub use public::PublicKey;
pub use ring::{AUDIT_KEY, KeyRing};
pub use signer::Signer;
