use serde::{Deserialize, Serialize};

use crate::format::sha256_hex;

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
    /// The command is identified, not recorded: its arguments may hold
    /// credentials, and the log is meant to be shipped off host. Build with
    /// [`Event::exec`].
    Exec {
        /// argv[0], at most [`MAX_PROGRAM`] characters.
        program: String,
        argc: u64,
        /// sha256 (hex) of the whole argv as a compact JSON array of strings
        /// (`["sh","-c","echo hi"]`), so someone who knows the command can
        /// confirm it. A fingerprint, not a secret: a guessable argv can be
        /// found by trying guesses.
        argv_sha256: String,
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    Down {},
    /// One connection through an instance's egress gate (or one DNS
    /// connection, whose queries are not recorded one by one). Text fields
    /// hold the gate's escaped view of guest text, at most
    /// [`MAX_EGRESS_TEXT`] characters each. Build with [`Event::egress`].
    Egress {
        /// `connect` (a granted name's own address), `proxy` (`CONNECT`)
        /// or `dns`.
        kind: String,
        /// `host:port` as asked, or the DNS names asked (comma-joined, at
        /// most 10); empty when the guest never said.
        asked: String,
        /// `ip:port` the gate connected to, when it did.
        address: Option<String>,
        decision: Decision,
        /// Why it was refused.
        detail: Option<String>,
        /// Guest to server.
        bytes_up: u64,
        /// Server to guest.
        bytes_down: u64,
        duration_ms: u64,
    },
    /// One request the host made for the guest (`mvm.web_fetch`,
    /// `mvm.web_search`). `secrets` names the secrets released into it
    /// (applied by the host): a release is a record with a non-empty list.
    /// Never a value, a URL path, a header or a body. Build with
    /// [`Event::mediated`].
    Mediated {
        /// `web_fetch` or `web_search`.
        kind: String,
        /// `host:port` asked for.
        destination: String,
        method: String,
        secrets: Vec<String>,
        decision: Decision,
        /// HTTP status, when the destination answered.
        status: Option<u16>,
        /// Why it was refused or failed (redacted by the host).
        detail: Option<String>,
        bytes_sent: u64,
        bytes_received: u64,
        duration_ms: u64,
    },
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

/// Characters of argv[0] an [`Event::Exec`] keeps.
pub const MAX_PROGRAM: usize = 256;

/// Characters of each text field an [`Event::Egress`] keeps, so a record
/// stays far below the line limit whatever a guest asked.
pub const MAX_EGRESS_TEXT: usize = 512;

impl Event {
    /// The `exec` record for `argv`: its program, length and hash, never its arguments.
    pub fn exec(argv: &[String], exit_code: Option<i32>, duration_ms: u64) -> Event {
        let program = argv
            .first()
            .map(|p| p.chars().take(MAX_PROGRAM).collect())
            .unwrap_or_default();
        // A Vec<String> always serializes.
        let json = serde_json::to_vec(argv).unwrap_or_default();
        Event::Exec {
            program,
            argc: argv.len() as u64,
            argv_sha256: sha256_hex(&json),
            exit_code,
            duration_ms,
        }
    }
}

impl Event {
    /// The `egress` record of one gate connection, its text fields cut to
    /// [`MAX_EGRESS_TEXT`] characters.
    #[allow(clippy::too_many_arguments)]
    pub fn egress(
        kind: &str,
        asked: &str,
        address: Option<String>,
        decision: Decision,
        detail: Option<&str>,
        bytes_up: u64,
        bytes_down: u64,
        duration_ms: u64,
    ) -> Event {
        let cut = |s: &str| s.chars().take(MAX_EGRESS_TEXT).collect::<String>();
        Event::Egress {
            kind: cut(kind),
            asked: cut(asked),
            address: address.as_deref().map(cut),
            decision,
            detail: detail.map(cut),
            bytes_up,
            bytes_down,
            duration_ms,
        }
    }
}

/// What a [`Event::Mediated`] record says about one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediatedRequest {
    pub kind: String,
    pub destination: String,
    pub method: String,
    pub secrets: Vec<String>,
    pub refused: bool,
    pub status: Option<u16>,
    pub detail: Option<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration_ms: u64,
}

impl Event {
    /// The `mediated` record of one request, its text fields cut to
    /// [`MAX_EGRESS_TEXT`] characters.
    pub fn mediated(r: MediatedRequest) -> Event {
        let cut = |s: &str| s.chars().take(MAX_EGRESS_TEXT).collect::<String>();
        Event::Mediated {
            kind: cut(&r.kind),
            destination: cut(&r.destination),
            method: cut(&r.method),
            secrets: r.secrets.iter().take(64).map(|s| cut(s)).collect(),
            decision: if r.refused {
                Decision::Refused
            } else {
                Decision::Admitted
            },
            status: r.status,
            detail: r.detail.as_deref().map(cut),
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            duration_ms: r.duration_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Admitted,
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_keeps_the_program_count_and_hash_only() {
        let argv: Vec<String> = ["curl", "-u", "admin:hunter2", "https://x"]
            .map(String::from)
            .to_vec();
        let ev = Event::exec(&argv, Some(0), 5);
        let line = serde_json::to_string(&ev).unwrap();
        assert!(!line.contains("hunter2"), "{line}");
        assert_eq!(
            ev,
            Event::Exec {
                program: "curl".into(),
                argc: 4,
                argv_sha256: sha256_hex(br#"["curl","-u","admin:hunter2","https://x"]"#),
                exit_code: Some(0),
                duration_ms: 5,
            }
        );
        let long = vec!["é".repeat(1000)];
        match Event::exec(&long, None, 0) {
            Event::Exec { program, argc, .. } => {
                assert_eq!((program.chars().count(), argc), (MAX_PROGRAM, 1))
            }
            other => panic!("{other:?}"),
        }
        match Event::exec(&[], None, 0) {
            Event::Exec { program, argc, .. } => assert_eq!((program.as_str(), argc), ("", 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mediated_records_name_secrets_and_cut_long_text() {
        let ev = Event::mediated(MediatedRequest {
            kind: "web_fetch".into(),
            destination: format!("{}:443", "a".repeat(5000)),
            method: "POST".into(),
            secrets: vec!["openai-api-key".into()],
            status: Some(200),
            bytes_sent: 10,
            bytes_received: 20,
            ..Default::default()
        });
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["event"], "mediated");
        assert_eq!(v["decision"], "admitted");
        assert_eq!(v["secrets"], serde_json::json!(["openai-api-key"]));
        assert_eq!(
            v["destination"].as_str().unwrap().chars().count(),
            MAX_EGRESS_TEXT
        );
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), ev);
    }

    #[test]
    fn egress_records_serialize_tagged_and_cut_long_text() {
        let ev = Event::egress(
            "proxy",
            &"a".repeat(5000),
            Some("93.184.215.14:443".into()),
            Decision::Refused,
            Some("\u{e9}vil is not granted"),
            10,
            20,
            30,
        );
        let line = serde_json::to_string(&ev).unwrap();
        assert!(
            line.starts_with(r#"{"event":"egress","kind":"proxy","#),
            "{line}"
        );
        assert!(line.contains(r#""decision":"refused""#), "{line}");
        assert!(
            line.contains(r#""bytes_up":10,"bytes_down":20,"duration_ms":30"#),
            "{line}"
        );
        match &ev {
            Event::Egress { asked, detail, .. } => {
                assert_eq!(asked.chars().count(), MAX_EGRESS_TEXT);
                assert_eq!(detail.as_deref(), Some("\u{e9}vil is not granted"));
            }
            other => panic!("{other:?}"),
        }
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, ev);
    }
}
