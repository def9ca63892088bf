//! Pointing IR findings at declaration text.

use std::collections::BTreeMap;

use mvm_ir::{Finding, Location};

/// The location of `pointer`, or of its nearest ancestor that has one: a
/// finding about `/apps/0/network/egress/allowlist/2/host` lands on the
/// `host_port(...)` call when the front end recorded that element, else on
/// `network=`.
pub fn lookup<'a>(spans: &'a BTreeMap<String, Location>, pointer: &str) -> Option<&'a Location> {
    let mut p = pointer;
    loop {
        if let Some(l) = spans.get(p) {
            return Some(l);
        }
        p = &p[..p.rfind('/')?];
    }
}

/// Attach locations to findings that do not have one yet.
pub fn locate_all(findings: &mut [Finding], spans: &BTreeMap<String, Location>) {
    for f in findings.iter_mut().filter(|f| f.location.is_none()) {
        f.location = lookup(spans, &f.path).cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(line: u32) -> Location {
        Location {
            file: "app.py".into(),
            line,
            column: 1,
        }
    }

    #[test]
    fn nearest_ancestor_wins() {
        let spans = BTreeMap::from([
            ("".to_string(), loc(1)),
            ("/apps/0/network".to_string(), loc(9)),
            ("/apps/0/network/egress/allowlist/1".to_string(), loc(12)),
        ]);
        assert_eq!(
            lookup(&spans, "/apps/0/network/egress/allowlist/1/host"),
            Some(&loc(12))
        );
        assert_eq!(
            lookup(&spans, "/apps/0/network/egress/allowlist/0/host"),
            Some(&loc(9))
        );
        assert_eq!(lookup(&spans, "/apps/0/networks"), Some(&loc(1)));
        assert_eq!(lookup(&BTreeMap::new(), "/apps/0"), None);
    }
}
