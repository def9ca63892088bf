//! What the broker says about each call: one [`Record`], also for a
//! refusal, for the instance's broker log and the audit trail (a record
//! whose `secrets` is not empty is a release).

use std::time::Duration;

/// One call's outcome. Text in it is escaped and redacted where it is set
/// ([`Record::refuse`], [`Record::destination`]), never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `web_fetch` or `web_search`.
    pub kind: &'static str,
    /// `host:port` asked for (or the search provider's), once known.
    pub destination: Option<String>,
    /// The HTTP method, once checked.
    pub method: Option<String>,
    /// The upstream status, when one answered.
    pub status: Option<u16>,
    /// Request body bytes sent upstream.
    pub bytes_sent: u64,
    /// Response body bytes received from upstream.
    pub bytes_received: u64,
    /// Names of the secrets whose values went into this request.
    pub secrets: Vec<String>,
    /// `allowed` or `refused`.
    pub decision: &'static str,
    /// Why it was refused or failed (escaped, redacted).
    pub reason: Option<String>,
    pub duration: Duration,
}

impl Record {
    pub(crate) fn new(kind: &'static str) -> Record {
        Record {
            kind,
            destination: None,
            method: None,
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            secrets: Vec::new(),
            decision: "refused",
            reason: None,
            duration: Duration::ZERO,
        }
    }

    pub fn duration_ms(&self) -> u64 {
        u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX)
    }

    /// The record as one JSON object on one line (no newline in it, none
    /// after it), stamped now (RFC 3339, UTC) as `time`, fields in the
    /// documented order.
    pub fn json_line(&self) -> String {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = Line {
            time: &time,
            kind: self.kind,
            destination: self.destination.as_deref(),
            method: self.method.as_deref(),
            status: self.status,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            secrets: &self.secrets,
            decision: self.decision,
            reason: self.reason.as_deref(),
            duration_ms: self.duration_ms(),
        };
        // Strings and numbers only: serializing cannot fail, and JSON
        // escapes any newline inside a string.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[derive(serde::Serialize)]
struct Line<'a> {
    time: &'a str,
    kind: &'a str,
    destination: Option<&'a str>,
    method: Option<&'a str>,
    status: Option<u16>,
    bytes_sent: u64,
    bytes_received: u64,
    secrets: &'a [String],
    decision: &'a str,
    reason: Option<&'a str>,
    duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_json_line_with_every_field() {
        let mut r = Record::new("web_fetch");
        r.destination = Some("api.example:443".into());
        r.method = Some("POST".into());
        r.status = Some(201);
        r.bytes_sent = 3;
        r.secrets = vec!["api-key".into()];
        r.decision = "allowed";
        r.reason = Some("two\nlines".into());
        r.duration = Duration::from_millis(42);
        let line = r.json_line();
        assert!(!line.contains('\n'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "web_fetch");
        assert_eq!(v["destination"], "api.example:443");
        assert_eq!(v["status"], 201);
        assert_eq!(v["secrets"][0], "api-key");
        assert_eq!(v["decision"], "allowed");
        assert_eq!(v["duration_ms"], 42);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(line.starts_with(r#"{"time":"#), "{line}");
    }
}
