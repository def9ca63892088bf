use serde::{Deserialize, Serialize};

/// What happened. Only identifiers, hashes and outcomes: never payload values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Build {
        image_id: String,
        ir_hash: String,
        workload_id: String,
        inputs_sha256: String,
    },
    PlanVerified {
        plan_sha256: String,
        signers: Vec<String>,
    },
    Admission {
        decision: Decision,
        /// Code of the failed check when refused.
        check: Option<String>,
        detail: Option<String>,
        plan_sha256: Option<String>,
        ir_hash: String,
    },
    Up {
        image_id: String,
        ir_hash: String,
        plan_sha256: Option<String>,
        accel: String,
    },
    Invoke {
        entrypoint: String,
        ok: bool,
        duration_ms: u64,
    },
    Exec {
        argv: Vec<String>,
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    Down {},
    Crash {
        detail: String,
    },
    /// Written by the next writer when the log does not continue from the
    /// signed head (records edited, removed or added since it was signed,
    /// or the head replaced): the chain goes on, and this record keeps the
    /// break visible to every later verification.
    HeadDiverged {
        /// What the signed head said (`None`: no valid head).
        head_seq: Option<u64>,
        head_log_len: Option<u64>,
        /// What the writer found: the last complete record and the log's length.
        found_seq: u64,
        found_log_len: u64,
    },
    /// Written by the next writer after a torn (crashed mid-write) last line.
    Repair {
        dropped_bytes: u64,
        dropped_sha256: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Admitted,
    Refused,
}
