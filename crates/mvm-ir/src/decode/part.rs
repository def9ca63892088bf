//! One part of an app read on its own, for a front end that builds the rest
//! of the app itself and copies only these parts from other untrusted JSON
//! (a recording's `resources`, `network` and `env` values). The same reader
//! as a whole workload, so the same defaults and the same findings, with
//! their pointers under the caller's `path`, sorted as [`super::from_value`]
//! sorts them.

use serde_json::Value;

use super::reader::Reader;
use crate::codes::Finding;
use crate::types::{EnvValue, Network, Resources};

/// An app's `resources` object, found at `path`.
pub fn resources(v: &Value, path: &str) -> Result<Resources, Vec<Finding>> {
    read(v, path, super::resources)
}

/// An app's `network` object, found at `path`.
pub fn network(v: &Value, path: &str) -> Result<Network, Vec<Finding>> {
    read(v, path, super::network)
}

/// One value of an app's `env` map, found at `path`.
pub fn env_value(v: &Value, path: &str) -> Result<EnvValue, Vec<Finding>> {
    read(v, path, super::env_value)
}

fn read<T>(
    v: &Value,
    path: &str,
    part: fn(&mut Reader, &Value, &str) -> Option<T>,
) -> Result<T, Vec<Finding>> {
    let mut r = Reader::default();
    match part(&mut r, v, path) {
        Some(t) if r.findings.is_empty() => Ok(t),
        _ => {
            let mut findings = r.findings;
            findings.sort_by(|a, b| (&a.path, a.code).cmp(&(&b.path, b.code)));
            Err(findings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Code;
    use serde_json::json;

    #[test]
    fn defaults_are_filled_as_in_a_workload() {
        assert_eq!(
            resources(&json!({"cpu_cores": 2}), "/x").unwrap(),
            Resources {
                cpu_cores: 2,
                ..Resources::default()
            }
        );
        assert_eq!(network(&json!({}), "/x").unwrap(), Network::default());
    }

    #[test]
    fn findings_point_under_the_callers_path() {
        let e = resources(
            &json!({"cpu_cores": -1, "gpus": 1}),
            "/sandboxes/0/resources",
        )
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/sandboxes/0/resources/cpu_cores",
                "/sandboxes/0/resources/gpus"
            ]
        );
        let e = env_value(&json!({"kind": "secret"}), "/s/env/A").unwrap_err();
        assert_eq!(
            (e[0].code, e[0].path.as_str()),
            (Code::ESchema, "/s/env/A/kind")
        );
        let e = network(&Value::Null, "/n").unwrap_err();
        assert_eq!(e[0].path, "/n");
    }
}
