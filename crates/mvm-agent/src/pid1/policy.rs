//! The guest's routing policy, computed from the network [`Layout`].
//!
//! The host forwards exactly the granted (address, port) pairs and drops
//! everything else silently, so a connection anywhere else would hang
//! until its timeout. These rules make it fail at once instead: each
//! granted pair is looked up in the main table (eth0's connected route),
//! and a catch-all `prohibit` answers every other lookup with EACCES. The
//! kernel's own rule 0 (`lookup local`) still comes first, so loopback and
//! the guest's own address keep working.

use std::net::Ipv4Addr;

use mvm_launch::net::{DNS_PORT, Layout, PROXY, PROXY_PORT, RESOLVER, Resolver};

use super::rtnl::{Action, Family, Proto, Rule};

/// The first allow rule's priority; each next one is one more.
pub const FIRST_PRIORITY: u32 = 100;
/// The catch-all, after every allow rule and before the kernel's `main`
/// (32766) and `default` (32767) rules.
pub const PROHIBIT_PRIORITY: u32 = 32000;

#[derive(Debug, thiserror::Error)]
#[error(
    "the network grants need {count} routing rules; at most {} fit before the catch-all",
    PROHIBIT_PRIORITY - FIRST_PRIORITY
)]
pub struct TooManyRules {
    count: usize,
}

fn to(addr: Ipv4Addr, port: u16) -> Rule {
    Rule {
        priority: 0,
        family: Family::V4,
        to: Some(addr),
        from: None,
        proto: Some(Proto::Tcp),
        dport: Some(port),
        sport: None,
        action: Action::LookupMain,
    }
}

/// Bridge mode: the granted names, the proxy, the resolver, the replies of
/// published ports and of UDP relays, then `prohibit` for IPv4 and IPv6.
pub fn bridge(layout: &Layout) -> Result<Vec<Rule>, TooManyRules> {
    let mut allow = Vec::new();
    for name in &layout.names {
        allow.extend(name.ports.iter().map(|&port| to(name.addr, port)));
    }
    if layout.proxy {
        allow.push(to(PROXY, PROXY_PORT));
    }
    if matches!(layout.resolver, Resolver::Grants | Resolver::Relay(_)) {
        allow.push(to(RESOLVER, DNS_PORT));
    }
    for published in &layout.published {
        // Inbound connections arrive through QEMU's hostfwd: from 10.0.2.2
        // when the client is on the host's loopback, from the client's own
        // address when `up --publish-address` listens elsewhere. Their
        // replies leave from the published port, so that is what is
        // matched (not the source address: a UDP server bound to 0.0.0.0
        // sends before the kernel has picked one). Anything else sent from
        // that port reaches nothing: the host forwards no such traffic.
        allow.push(Rule {
            priority: 0,
            family: Family::V4,
            to: None,
            from: None,
            proto: Some(match published.proto {
                mvm_launch::Proto::Tcp => Proto::Tcp,
                mvm_launch::Proto::Udp => Proto::Udp,
            }),
            dport: None,
            sport: Some(published.guest),
            action: Action::LookupMain,
        });
    }
    for (_, relay) in layout.udp_relays() {
        // The host's relay connection for a published UDP port arrives
        // like a published TCP port's; its replies leave from the relay port.
        allow.push(Rule {
            priority: 0,
            family: Family::V4,
            to: None,
            from: None,
            proto: Some(Proto::Tcp),
            dport: None,
            sport: Some(relay),
            action: Action::LookupMain,
        });
    }
    numbered(allow)
}

/// The image builder's VM (no launch.json yet): the proxy only.
pub fn builder() -> Vec<Rule> {
    // One allow rule always fits.
    numbered(vec![to(PROXY, PROXY_PORT)]).unwrap_or_default()
}

/// A device attached to a guest whose launch.json says `none`: nothing out.
pub fn deny_all() -> Vec<Rule> {
    numbered(Vec::new()).unwrap_or_default()
}

fn numbered(mut allow: Vec<Rule>) -> Result<Vec<Rule>, TooManyRules> {
    let room = (PROHIBIT_PRIORITY - FIRST_PRIORITY) as usize;
    if allow.len() > room {
        return Err(TooManyRules { count: allow.len() });
    }
    for (rule, priority) in allow.iter_mut().zip(FIRST_PRIORITY..) {
        rule.priority = priority;
    }
    allow.push(Rule::prohibit_all(Family::V4, PROHIBIT_PRIORITY));
    // QEMU's user network announces IPv6 too; without this a v6
    // connection would be routed and then hang like any other.
    allow.push(Rule::prohibit_all(Family::V6, PROHIBIT_PRIORITY));
    Ok(allow)
}

#[cfg(test)]
pub(crate) mod tests {
    use mvm_launch::net::Layout;
    use mvm_launch::{Dns, Egress, Network, NetworkMode, PortForward};

    use super::*;

    pub(crate) fn network(grants: &[(&str, u16)], dns: Dns, ports: &[(u16, bool)]) -> Network {
        Network {
            mode: NetworkMode::Bridge,
            ports: ports
                .iter()
                .map(|&(guest, tcp)| PortForward {
                    guest,
                    host: 0,
                    proto: if tcp {
                        mvm_launch::Proto::Tcp
                    } else {
                        mvm_launch::Proto::Udp
                    },
                })
                .collect(),
            egress: Egress::of(grants),
            dns,
        }
    }

    fn shown(rules: &[Rule]) -> Vec<String> {
        rules.iter().map(Rule::to_string).collect()
    }

    #[test]
    fn bridge_rules_allow_exactly_the_layout() {
        let net = network(
            &[
                ("pypi.org", 443),
                ("api.example.com", 443),
                ("pypi.org", 80),
                ("1.2.3.4", 443),
            ],
            Dns::System,
            &[(8080, true), (5353, false)],
        );
        let layout = Layout::of(&net).unwrap();
        let rules = bridge(&layout).unwrap();
        assert_eq!(
            shown(&rules),
            [
                "100: to 10.0.2.101/32 ipproto tcp dport 443 lookup main",
                "101: to 10.0.2.101/32 ipproto tcp dport 80 lookup main",
                "102: to 10.0.2.102/32 ipproto tcp dport 443 lookup main",
                "103: to 10.0.2.100/32 ipproto tcp dport 3128 lookup main",
                "104: to 10.0.2.99/32 ipproto tcp dport 53 lookup main",
                "105: from all ipproto tcp sport 8080 lookup main",
                "106: from all ipproto udp sport 5353 lookup main",
                "107: from all ipproto tcp sport 61000 lookup main",
                "32000: from all prohibit",
                "-6 32000: from all prohibit",
            ]
        );
    }

    #[test]
    fn no_grants_no_dns_means_only_the_catch_all() {
        let layout = Layout::of(&network(&[], Dns::None, &[])).unwrap();
        let rules = bridge(&layout).unwrap();
        assert_eq!(
            shown(&rules),
            ["32000: from all prohibit", "-6 32000: from all prohibit"]
        );
        assert_eq!(rules, deny_all());
        // A relay resolver is allowed without any grant; the proxy is not.
        let relay = Dns::Resolver {
            host: "9.9.9.9".into(),
            port: 53,
        };
        let layout = Layout::of(&network(&[], relay, &[])).unwrap();
        assert_eq!(
            shown(&bridge(&layout).unwrap())[0],
            "100: to 10.0.2.99/32 ipproto tcp dport 53 lookup main"
        );
    }

    #[test]
    fn the_builder_reaches_the_proxy_only() {
        assert_eq!(
            shown(&builder()),
            [
                "100: to 10.0.2.100/32 ipproto tcp dport 3128 lookup main",
                "32000: from all prohibit",
                "-6 32000: from all prohibit",
            ]
        );
    }

    #[test]
    fn too_many_rules_is_an_error_not_a_clash_with_the_catch_all() {
        let allow = vec![to(PROXY, PROXY_PORT); (PROHIBIT_PRIORITY - FIRST_PRIORITY) as usize];
        let rules = numbered(allow.clone()).unwrap();
        assert_eq!(rules[rules.len() - 3].priority, PROHIBIT_PRIORITY - 1);
        let mut over = allow;
        over.push(to(PROXY, PROXY_PORT));
        assert!(numbered(over).is_err());
    }
}
