//! Findings about the bindings of an app's secrets (`type`, `header` and
//! `hosts` of each `secret_ref`): a header the host can set, hosts that are
//! concrete and granted, and no two secrets competing for one header on one
//! host. The rules themselves are in [`super::secrets`].

use std::collections::{BTreeMap, BTreeSet};

use super::network::{HostProblem, host_problem};
use super::secrets::{auth_name, header_problem, header_set, host_key};
use super::{Validator, child};
use crate::codes::Code;
use crate::types::{EnvValue, Network, NetworkMode, SecretAuth};

/// A binding that makes the host set a header, for the conflict check.
struct Setter<'a> {
    key: &'a str,
    name: &'a str,
    /// Lowercase, for comparing.
    header: String,
    /// As the user would recognise it.
    shown: &'a str,
    /// Host keys; empty: every grant.
    hosts: BTreeSet<String>,
    /// The field that makes it set the header (`type` or `header`).
    path: String,
}

impl Validator {
    pub(super) fn secret_bindings(
        &mut self,
        path: &str,
        env: &BTreeMap<String, EnvValue>,
        net: &Network,
    ) {
        // Mode none has no grants, whatever the allowlist says (that is
        // E_NETWORK_EGRESS_CLOSED already).
        let grants: BTreeSet<String> = match net.mode {
            NetworkMode::None => BTreeSet::new(),
            _ => net
                .egress
                .allowlist
                .iter()
                .map(|hp| host_key(&hp.host))
                .collect(),
        };
        let closed = net.mode == NetworkMode::None;
        let mut setters = Vec::new();
        for (key, value) in env {
            let EnvValue::SecretRef {
                name,
                auth,
                header,
                hosts,
            } = value
            else {
                continue;
            };
            let p = child(path, key);
            let header_ok = self.secret_header(&p, name, *auth, header.as_deref());
            self.secret_hosts(&p, name, *auth, hosts, &grants, closed);
            if let (true, Some(h)) = (header_ok, header_set(*auth, header.as_deref())) {
                let (shown, field) = match (auth, header) {
                    (SecretAuth::Header, Some(written)) => (written.as_str(), "header"),
                    _ => ("Authorization", "type"),
                };
                setters.push(Setter {
                    key,
                    name,
                    header: h,
                    shown,
                    hosts: hosts.iter().map(|h| host_key(h)).collect(),
                    path: child(&p, field),
                });
            }
        }
        self.binding_conflicts(&setters);
    }

    /// Reports a `header` that does not fit the `type`; true when the
    /// binding's header (if any) is one the host can set.
    fn secret_header(
        &mut self,
        p: &str,
        name: &str,
        auth: SecretAuth,
        header: Option<&str>,
    ) -> bool {
        let path = child(p, "header");
        let (message, hint) = match (auth, header) {
            (SecretAuth::Header, None) => (
                format!("secret \"{name}\" has type \"header\" but no header name"),
                "name the header the service reads the credential from, e.g. header=\"X-Api-Key\" (or use type \"bearer\" for Authorization: Bearer)".to_string(),
            ),
            (SecretAuth::Header, Some(h)) => match header_problem(h) {
                None => return true,
                Some(why) => (
                    format!("header \"{h}\" of secret \"{name}\" {why}"),
                    "give the header the service reads the credential from, e.g. \"X-Api-Key\"; framing, connection and proxy headers (Host, Content-Length, Connection, Proxy-Authorization, ...) are the host's".to_string(),
                ),
            },
            (_, Some(h)) => (
                format!(
                    "secret \"{name}\" names header \"{h}\" but its type is \"{}\"; only type \"header\" uses a header name",
                    auth_name(auth)
                ),
                "set type=\"header\" to send the secret in that header, or drop header".to_string(),
            ),
            (_, None) => return true,
        };
        self.push(Code::ESecretHeaderInvalid, path, message, hint);
        false
    }

    fn secret_hosts(
        &mut self,
        p: &str,
        name: &str,
        auth: SecretAuth,
        hosts: &[String],
        grants: &BTreeSet<String>,
        closed: bool,
    ) {
        let hosts_path = child(p, "hosts");
        if hosts.is_empty() && auth != SecretAuth::Token {
            self.push(
                Code::WSecretUnbound,
                hosts_path.clone(),
                format!(
                    "secret \"{name}\" has type \"{}\" and no hosts: the host adds it to every request to any of the app's egress grants",
                    auth_name(auth)
                ),
                "bind it to the hosts that need it, e.g. hosts=[\"api.openai.com\"]",
            );
        }
        for (i, host) in hosts.iter().enumerate() {
            let hp = child(&hosts_path, i.to_string());
            match host_problem(host) {
                Some(HostProblem::Wildcard(why)) => self.push(
                    Code::ENetworkWildcard,
                    hp,
                    format!("bound host \"{host}\" of secret \"{name}\" {why}"),
                    "bind the secret to each host by name or address, e.g. hosts=[\"api.openai.com\"]; wildcards and ranges are not allowed",
                ),
                Some(HostProblem::Invalid(why)) => self.push(
                    Code::ESecretHostInvalid,
                    hp,
                    format!("bound host \"{host}\" of secret \"{name}\" {why}"),
                    "give a DNS name or an IP address, without scheme, port or path, e.g. \"api.openai.com\"",
                ),
                None if !grants.contains(&host_key(host)) => self.push(
                    Code::ESecretHostNotGranted,
                    hp,
                    if closed {
                        format!("secret \"{name}\" is bound to \"{host}\", but network mode is \"none\": the app has no egress grants")
                    } else {
                        format!("secret \"{name}\" is bound to \"{host}\", which is not one of the app's egress grants")
                    },
                    format!("grant it as well (mvm.network(mode=\"deny\", allow_https=[\"{host}\"]), or an egress allowlist entry {{\"host\": \"{host}\", \"port\": 443}}), or remove it from the secret's hosts"),
                ),
                None => {}
            }
        }
    }

    /// Two secrets setting one header on one host: the host could not tell
    /// which to send. Reported once, on the later env key.
    fn binding_conflicts(&mut self, setters: &[Setter]) {
        for (j, later) in setters.iter().enumerate() {
            let clash = setters[..j].iter().find_map(|earlier| {
                if earlier.header != later.header {
                    return None;
                }
                let shared = match (earlier.hosts.is_empty(), later.hosts.is_empty()) {
                    (true, true) => "every egress grant".to_string(),
                    (true, false) => format!("\"{}\"", later.hosts.first()?),
                    (false, true) => format!("\"{}\"", earlier.hosts.first()?),
                    (false, false) => {
                        format!("\"{}\"", earlier.hosts.intersection(&later.hosts).next()?)
                    }
                };
                Some((earlier, shared))
            });
            if let Some((earlier, shared)) = clash {
                self.push(
                    Code::ESecretBindingConflict,
                    later.path.clone(),
                    format!(
                        "secrets \"{}\" (env {}) and \"{}\" (env {}) both set the {} header on requests to {shared}",
                        earlier.name, earlier.key, later.name, later.key, later.shown
                    ),
                    "bind them to different hosts, or keep one of them; the host could not tell which to send",
                );
            }
        }
    }
}
