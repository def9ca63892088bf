//! Host↔guest protocol of mvm: a versioned hello, length-delimited JSON
//! frames with size caps, and request/response messages multiplexed by
//! request id. The core is synchronous and works over any `Read`/`Write`
//! pair, so the static guest agent needs no async runtime; [`client`] is a
//! blocking host-side client for a connected stream.
//!
//! Frame decoding (guest output, untrusted by the host) lives in [`frame`]
//! and nowhere else.

pub mod base64_bytes;
pub mod broker;
pub mod client;
mod envelope;
pub mod frame;
mod request;
mod response;

pub use client::{Client, ClientError, ExecEvent, ExecOutput, ExecStream, Pending};
pub use envelope::{GuestFrame, Hello, HostFrame, PROTOCOL_VERSION};
pub use frame::{FrameError, MAX_FRAME_BYTES};
pub use request::{DEFAULT_FILE_MODE, ExecRequest, FILE_READ_MAX_BYTES, HookPhase, Request};
pub use response::{
    AgentError, DirEntry, ErrorKind, FileKind, FileStat, FunctionError, HookOutcome, ProcessExit,
    Response,
};
