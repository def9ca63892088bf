//! The host secret store (`$MVM_HOME/secrets`).
//!
//! A secret `<name>` (the IR's secret-name rule) is one file,
//! `<name>.secret`, mode 0600 in a 0700 directory, written atomically
//! (staged beside it, fsynced, renamed) and never opened through a
//! symlink. Its value is encrypted with XChaCha20-Poly1305 under a 32-byte
//! store key kept outside the mvm home ([`default_key_file`]); the name is
//! authenticated, so files cannot be swapped between names. The threat
//! model is in docs/security.md, "Secret store".
//!
//! No error or `Debug` output of this crate holds a value.

mod error;
mod fsutil;
mod key;
mod name;
mod record;
mod store;

pub use error::SecretError;
pub use key::default_key_file;
pub use name::is_secret_name;
pub use store::{MAX_VALUE, Meta, Store};

#[cfg(test)]
mod tests;
