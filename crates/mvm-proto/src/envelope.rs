//! The outermost shape of every frame: the host sends numbered requests;
//! the agent sends one hello per connection, then replies tagged with the
//! number of the request they answer, so several requests can be in flight
//! and a streaming one (exec) does not block the others.

use serde::{Deserialize, Serialize};

use crate::{Request, Response};

/// Version of this protocol. Bumped on any change an older peer would
/// misread; both sides refuse a peer whose version differs.
pub const PROTOCOL_VERSION: u32 = 1;

/// Host → agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFrame {
    /// Chosen by the host, unique among its requests in flight.
    pub id: u64,
    pub request: Request,
}

/// Agent → host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum GuestFrame {
    /// First frame on every connection.
    Hello(Hello),
    Reply {
        id: u64,
        response: Response,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub agent_version: String,
    /// What this agent can do, e.g. `exec`, `files`, `invoke`, `hooks`,
    /// `service`, `resume` (see the crate README).
    pub capabilities: Vec<String>,
}
