//! `GET /metrics`, in the Prometheus text format: instances by state,
//! create/restore/invoke latency histograms, API requests by code, and
//! egress decisions and secret releases counted from the audit trail
//! (read incrementally, as `mvmctl audit --follow` does).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{Shared, blocking};

/// Upper bounds, in seconds, of the latency histograms' buckets.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += s;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str, label: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let sep = if label.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{label}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if label.is_empty() {
            String::new()
        } else {
            format!("{{{label}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    create_boot: Histogram,
    create_restored: Histogram,
    restore: Histogram,
    invoke: Histogram,
    requests: BTreeMap<u16, u64>,
    egress: BTreeMap<String, u64>,
    releases: u64,
    follower: Option<mvm_audit::Follower>,
    /// A follower exists (it may be out, being polled).
    following: bool,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A create; `restored` when it came from a snapshot (template or tag).
    pub fn observe_create(&self, d: Duration, restored: bool) {
        self.with(|m| {
            if restored {
                m.create_restored.observe(d)
            } else {
                m.create_boot.observe(d)
            }
        });
    }

    pub fn observe_restore(&self, d: Duration) {
        self.with(|m| m.restore.observe(d));
    }

    pub fn observe_invoke(&self, d: Duration) {
        self.with(|m| m.invoke.observe(d));
    }

    fn count_request(&self, status: u16) {
        self.with(|m| *m.requests.entry(status).or_default() += 1);
    }

    /// Counts the audit records written since the last scrape. The log is
    /// read outside the lock (a first read can be long), so requests are
    /// never held up by it; two scrapes at once read it once.
    fn follow_audit(&self, home: &std::path::Path) {
        let Some(mut follower) = self.with(|m| m.follower.take()).or_else(|| {
            self.with(|m| {
                (!m.following).then(|| {
                    m.following = true;
                    mvm_audit::Follower::new(&mvm_runtime::audit::audit_dir(home))
                })
            })
        }) else {
            return;
        };
        let found = follower.poll();
        self.with(|m| {
            m.follower = Some(follower);
            let Ok(found) = found else { return };
            if found.restarted {
                m.egress.clear();
                m.releases = 0;
            }
            for r in found.records {
                match r.event.get("event").and_then(|e| e.as_str()) {
                    Some("egress") => {
                        let d = r
                            .event
                            .get("decision")
                            .and_then(|d| d.as_str())
                            .unwrap_or("unknown")
                            .to_string();
                        *m.egress.entry(d).or_default() += 1;
                    }
                    Some("mediated") => {
                        let released = r
                            .event
                            .get("secrets")
                            .and_then(|s| s.as_array())
                            .is_some_and(|s| !s.is_empty());
                        if released {
                            m.releases += 1;
                        }
                    }
                    _ => {}
                }
            }
        });
    }
}

/// Counts every answered request by its HTTP status.
pub async fn count(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    app.metrics.count_request(response.status().as_u16());
    response
}

pub async fn render(State(app): State<Shared>) -> Response {
    let home = app.home.clone();
    let states = blocking(move || {
        let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
        for s in [
            "starting", "running", "stopping", "pausing", "paused", "dead",
        ] {
            states.insert(s, 0);
        }
        for (_, st) in mvm_runtime::state::list(&home)? {
            if let Ok(st) = st {
                *states.entry(st.observe().as_str()).or_default() += 1;
            }
        }
        Ok(states)
    })
    .await
    .unwrap_or_default();
    let home = app.home.clone();
    let app2 = app.clone();
    let _ = blocking(move || {
        app2.metrics.follow_audit(&home);
        Ok(())
    })
    .await;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP mvm_instances Instances by observed state.\n# TYPE mvm_instances gauge"
    );
    for (s, n) in &states {
        let _ = writeln!(out, "mvm_instances{{state=\"{s}\"}} {n}");
    }
    app.metrics.with(|m| {
        let _ = writeln!(out, "# HELP mvm_create_seconds Sandbox create latency, by how the guest started.\n# TYPE mvm_create_seconds histogram");
        let mut body = String::new();
        m.create_boot.render(&mut body, "mvm_create_seconds", "", "start=\"boot\"");
        m.create_restored.render(&mut body, "mvm_create_seconds", "", "start=\"snapshot\"");
        // One HELP/TYPE for both label sets.
        for l in body.lines().filter(|l| !l.starts_with('#')) {
            let _ = writeln!(out, "{l}");
        }
        m.restore.render(&mut out, "mvm_restore_seconds", "Resume and fork latency.", "");
        m.invoke.render(&mut out, "mvm_invoke_seconds", "Function invoke latency through the API.", "");
        let _ = writeln!(out, "# HELP mvm_api_requests_total API requests answered, by HTTP status.\n# TYPE mvm_api_requests_total counter");
        for (code, n) in &m.requests {
            let _ = writeln!(out, "mvm_api_requests_total{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP mvm_egress_decisions_total Egress gate decisions recorded in the audit trail.\n# TYPE mvm_egress_decisions_total counter");
        for (d, n) in &m.egress {
            let _ = writeln!(out, "mvm_egress_decisions_total{{decision=\"{d}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP mvm_secret_releases_total Mediated requests into which the host released secrets.\n# TYPE mvm_secret_releases_total counter\nmvm_secret_releases_total {}", m.releases);
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
