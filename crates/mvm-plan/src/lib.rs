//! Plans and admission. This first cut holds the two stores admission
//! needs: the replay (nonce) store and the file digest cache.

pub mod digest;
pub mod replay;

pub use digest::{DigestCache, PlanError};
pub use replay::{Refusal, ReplayStore};
