//! The guest agent and function runners, embedded at build time by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/agent.rs"));
