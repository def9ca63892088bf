//! Plans and admission.
//!
//! - [`plan`]: the plan document, what `up` would launch;
//! - [`envelope`]: `plan.json` on disk, bare or DSSE-signed, and the one
//!   reader of it;
//! - [`policy`]: `policy.toml`, the operator's trusted keys and limits;
//! - [`admit`]: the checks, in order, each refusing with its own code;
//! - [`replay`], [`digest`]: the nonce store and the file digest cache
//!   admission keeps under `$MVM_HOME/trust`.

pub mod admit;
pub mod digest;
pub mod envelope;
mod error;
mod file;
pub mod plan;
pub mod policy;
pub mod replay;

pub use admit::{Admitted, LaunchFiles, TrustStores, admit};
pub use digest::DigestCache;
pub use envelope::{PlanFile, SignedBy, Verified};
pub use error::PlanError;
pub use plan::{BootDigests, ImageDigests, Plan, Window};
pub use policy::Policy;
pub use replay::{Refusal, ReplayStore};
