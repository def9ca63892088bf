//! What the gate says about each connection (and each DNS query): one
//! [`Record`], written by the CLI as one JSON line and as an audit event.
//! Guest text is escaped (`mvm_ir::text::escape_control`) when it enters a
//! record, in [`Record::ask`] and [`Record::refuse`], and nowhere else.

use std::time::Duration;

use mvm_ir::text::escape_control;

/// Which way the connection came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--to`: the guest connected to a name's own address.
    Connect,
    /// An HTTP `CONNECT` request to the proxy address.
    Proxy,
    /// The grants-only DNS responder.
    Dns,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Connect => "connect",
            Kind::Proxy => "proxy",
            Kind::Dns => "dns",
        }
    }
}

/// One connection's (or DNS query's) outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    /// `host:port` as asked, or the DNS name(s); escaped. `None` when the
    /// guest never said (garbage, a limit hit first).
    pub asked: Option<String>,
    /// Where the gate connected (`ip:port`); for a DNS answer, the guest
    /// address it answered with.
    pub address: Option<String>,
    pub allowed: bool,
    /// Why it was refused; escaped.
    pub reason: Option<String>,
    /// Guest to server.
    pub bytes_up: u64,
    /// Server to guest.
    pub bytes_down: u64,
    pub duration: Duration,
    /// Refused by a per-instance limit (rate, concurrency) before anything
    /// was read: logged, but not worth an audit record each (a guest in a
    /// connect loop would otherwise flood the host-wide trail).
    pub limited: bool,
}

impl Record {
    /// A record of `kind`, refused until something allows it.
    pub fn new(kind: Kind) -> Record {
        Record {
            kind,
            asked: None,
            address: None,
            allowed: false,
            reason: None,
            bytes_up: 0,
            bytes_down: 0,
            duration: Duration::ZERO,
            limited: false,
        }
    }

    /// Sets what the guest asked for, escaping it.
    pub fn ask(&mut self, raw: &str) {
        self.asked = Some(escape_control(raw).into_owned());
    }

    /// Marks it refused for `why` (raw; escaped here).
    pub fn refuse(&mut self, why: &str) {
        self.allowed = false;
        self.reason = Some(escape_control(why).into_owned());
    }

    pub fn decision(&self) -> &'static str {
        if self.allowed { "allowed" } else { "refused" }
    }

    pub fn duration_ms(&self) -> u64 {
        u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX)
    }

    /// The record as one JSON object and a newline, stamped now (RFC 3339,
    /// UTC), its fields in the documented order.
    pub fn json_line(&self) -> String {
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = Line {
            ts: &ts,
            kind: self.kind.as_str(),
            asked: self.asked.as_deref(),
            address: self.address.as_deref(),
            decision: self.decision(),
            reason: self.reason.as_deref(),
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
            duration_ms: self.duration_ms(),
        };
        // Strings and numbers only: serializing cannot fail.
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// One JSON log line.
#[derive(serde::Serialize)]
struct Line<'a> {
    ts: &'a str,
    kind: &'a str,
    asked: Option<&'a str>,
    address: Option<&'a str>,
    decision: &'a str,
    reason: Option<&'a str>,
    bytes_up: u64,
    bytes_down: u64,
    duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_hold_every_field_and_no_raw_guest_control_text() {
        let mut r = Record::new(Kind::Proxy);
        r.ask("evil\u{1b}[2J\n:443");
        r.refuse("\u{202e}nope\u{7}");
        r.bytes_up = 3;
        r.duration = Duration::from_millis(1500);
        let line = r.json_line();
        assert!(line.starts_with(r#"{"ts":""#), "{line}");
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "proxy");
        assert_eq!(v["decision"], "refused");
        assert_eq!(v["address"], serde_json::Value::Null);
        assert_eq!(v["bytes_up"], 3);
        assert_eq!(v["bytes_down"], 0);
        assert_eq!(v["duration_ms"], 1500);
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
        for field in ["asked", "reason"] {
            let text = v[field].as_str().unwrap();
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{field}: {text:?}"
            );
        }
        assert!(v["asked"].as_str().unwrap().contains("\\x1b[2J"), "{line}");
    }
}
