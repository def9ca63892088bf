//! Workload IR v0.1: types, strict reader, canonical JSON, hashing, validation.
//!
//! This crate is the one contract between front ends and back ends and
//! depends on nothing else of mvm. Layout:
//! - [`types`]: the IR types (serialize to the full canonical shape);
//! - [`decode`]: strict reading from JSON with defaults filled in;
//! - [`canonical`]: RFC 8785 (JCS) writer and `ir_hash`;
//! - [`validate`](mod@validate): semantic checks returning every finding;
//! - [`codes`]: the one registry of finding codes;
//! - [`schema`]: JSON Schema generated from the types;
//! - [`text`]: escaping untrusted text before it is printed or logged.

pub mod canonical;
pub mod codes;
pub mod decode;
pub mod schema;
pub mod text;
pub mod types;
pub mod validate;

pub use canonical::{ir_hash, to_canonical_bytes, to_canonical_string};
pub use codes::{Code, Finding, Location, Severity};
pub use validate::validate;

pub use types::*;
