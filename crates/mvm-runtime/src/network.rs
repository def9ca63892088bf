//! An instance's network at run time: from the launch contract's network
//! and the operator's `up` options to what QEMU is told to forward.
//!
//! `bridge`: QEMU user networking with `restrict=on`, so the guest reaches
//! nothing but the forwards listed here, each served by a fresh egress-gate
//! process (`mvmctl __egress-proxy`) per connection: one per granted
//! (name, port) at the name's guest address, the `HTTPS_PROXY` gate when
//! there is a grant, and the guest's resolver under `dns_system` (answers
//! granted names only) or `dns_resolver` (a relay to that server). The
//! guest lays out the same addresses from the same contract
//! ([`mvm_launch::net::Layout`]) and refuses everything else at once.
//! `host` (trusted workloads only): unrestricted user networking.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use mvm_launch::net::{self, Layout, Resolver};
use mvm_launch::{HostPort, Launch, NetworkMode, Proto};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// Where the guest finds the host's CA bundle (a tmpfs: not image content).
pub const GUEST_CA_FILE: &str = "/run/mvm/host-ca.pem";

/// Largest CA bundle handed to a guest.
pub const MAX_CA_BYTES: u64 = 8 << 20;

/// The host's CA bundle: `SSL_CERT_FILE`, else Debian's, if it exists.
pub fn host_ca_bundle() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    path.is_file().then_some(path)
}

/// (name, port) pairs one microVM forwards to the gate: each is one QEMU
/// `guestfwd` with the gate's whole command line, and QEMU takes the
/// network as one argument (Linux caps one at 128 KiB).
pub const MAX_GATE_FORWARDS: usize = 128;

/// The `CERTIFICATE` PEM blocks of the file at `path` (a regular file, read
/// up to [`MAX_CA_BYTES`]), or `None` when it has none.
pub fn certificates(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_CA_BYTES).read_to_string(&mut text).ok()?;
    let (begin, end) = ("-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find(begin) {
        let Some(len) = rest[at..].find(end) else {
            break;
        };
        out.push_str(&rest[at..at + len + end.len()]);
        out.push('\n');
        rest = &rest[at + len + end.len()..];
    }
    (!out.is_empty()).then(|| out.into_bytes())
}

/// Defaults of the per-instance gate limits.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
pub const DEFAULT_MAX_RATE: u32 = 50;
pub const DEFAULT_IDLE_SECS: u64 = 300;

/// What the operator decides at `up`, never a declaration.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Exact grants (`HOST:PORT`) the gate may connect to although they
    /// are, or resolve to, loopback/private/link-local/metadata addresses.
    pub allow_private: Vec<String>,
    /// `HOST=IP`: connect a granted name to this address instead of
    /// resolving it (a developer's own service, tests).
    pub pins: Vec<String>,
    /// Where published ports listen on the host.
    pub publish_address: Ipv4Addr,
    pub max_connections: usize,
    pub max_rate: u32,
    pub idle_secs: u64,
}

impl Default for NetworkOptions {
    fn default() -> NetworkOptions {
        NetworkOptions {
            allow_private: Vec::new(),
            pins: Vec::new(),
            publish_address: Ipv4Addr::LOCALHOST,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_rate: DEFAULT_MAX_RATE,
            idle_secs: DEFAULT_IDLE_SECS,
        }
    }
}

/// The machine's network, as recorded in `state.json` (a restore rebuilds
/// the identical device from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Externally tagged: `"none"` is what records written before networks
// existed hold.
#[serde(rename_all = "snake_case")]
pub enum NetworkConfig {
    /// No network device: the guest has only `lo`.
    None,
    /// QEMU user networking.
    User {
        mode: NetworkMode,
        restrict: bool,
        published: Vec<Published>,
        gates: Vec<GateForward>,
        /// Bridge mode's published UDP ports, relayed over TCP by the
        /// supervisor (absent from records written before relays).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        udp_relays: Vec<UdpRelay>,
    },
}

impl NetworkConfig {
    /// The UDP ports the supervisor relays (bridge mode).
    pub fn udp_relays(&self) -> &[UdpRelay] {
        match self {
            NetworkConfig::None => &[],
            NetworkConfig::User { udp_relays, .. } => udp_relays,
        }
    }
}

/// A published UDP port in bridge mode, where QEMU (`restrict=on`) drops
/// every datagram the guest sends: the supervisor listens for datagrams on
/// `host_address:host_port` (what `published` shows) and carries them in
/// frames ([`mvm_launch::net::relay_frame`]) over a TCP connection to
/// `127.0.0.1:relay_host_port`, which QEMU forwards to the agent's relay
/// on `guest_relay_port`; the agent sends them on to `guest_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpRelay {
    pub guest_port: u16,
    pub host_address: Ipv4Addr,
    pub host_port: u16,
    pub guest_relay_port: u16,
    pub relay_host_port: u16,
}

/// A guest port reachable on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub proto: Proto,
    pub guest_port: u16,
    pub host_address: Ipv4Addr,
    /// The port actually listened on (chosen at `up` when the declaration
    /// said 0).
    pub host_port: u16,
}

impl Published {
    /// `8080/tcp -> 127.0.0.1:49152`.
    pub fn describe(&self) -> String {
        format!(
            "{}/{} -> {}:{}",
            self.guest_port,
            proto_str(self.proto),
            self.host_address,
            self.host_port
        )
    }
}

pub fn proto_str(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// A guest address and port whose connections go to a gate process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateForward {
    pub guest_address: Ipv4Addr,
    pub guest_port: u16,
    pub argv: Vec<String>,
}

/// Where the gate processes of one instance write and what they run as.
pub struct GateContext<'a> {
    /// The `mvmctl` executable (it serves `__egress-proxy`).
    pub program: &'a Path,
    pub egress_log: &'a Path,
    pub slots_dir: &'a Path,
    /// The instance name and `MVM_HOME`, when its connections are audited.
    pub audit: Option<(&'a str, &'a Path)>,
}

/// The network of one instance, and what `up` must tell its operator.
#[derive(Debug)]
pub struct Planned {
    pub config: NetworkConfig,
    /// The host CA bundle the guest gets (bridge mode with grants).
    /// Only its `CERTIFICATE` blocks: a bundle that also held a private
    /// key (a developer's own intercepting proxy's CA file) must not hand
    /// the key to the guest.
    pub host_ca: Option<Vec<u8>>,
    /// Added to the guest's environment (`HTTPS_PROXY`...).
    pub env: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

impl Planned {
    /// The guest verifies TLS as this host would (see [`GUEST_CA_FILE`]).
    fn give_host_ca(&mut self) {
        if let Some(ca) = host_ca_bundle().and_then(|p| certificates(&p)) {
            self.host_ca = Some(ca);
            for k in [
                "SSL_CERT_FILE",
                "NODE_EXTRA_CA_CERTS",
                "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE",
            ] {
                self.env.push((k.to_string(), GUEST_CA_FILE.to_string()));
            }
        }
    }
}

fn bad(detail: String, hint: &str) -> RuntimeError {
    RuntimeError::BadInput {
        detail,
        hint: hint.to_string(),
    }
}

/// Plans `launch`'s network under the operator's `opts`.
pub fn plan(
    launch: &Launch,
    opts: &NetworkOptions,
    gate: &GateContext<'_>,
) -> Result<Planned, RuntimeError> {
    let layout = Layout::of(&launch.network).map_err(|e| {
        bad(
            e.to_string(),
            "the image's launch.json is damaged; compile and build it again",
        )
    })?;
    let mut planned = Planned {
        config: NetworkConfig::None,
        host_ca: None,
        env: Vec::new(),
        warnings: Vec::new(),
    };
    let granted: Vec<String> = layout
        .grants
        .iter()
        .map(|g| format!("{}:{}", g.host, g.port))
        .chain(match &layout.resolver {
            Resolver::Relay(hp) => Some(format!("{}:{}", hp.host, hp.port)),
            _ => None,
        })
        .collect();
    let allow_private = check_allow_private(&opts.allow_private, &granted)?;
    let pins = check_pins(&opts.pins, &layout)?;
    if layout.mode == NetworkMode::None {
        if !allow_private.is_empty() || !pins.is_empty() {
            planned.warnings.push(
                "the workload has no network (mode none); --allow-private-egress and --egress-pin have no effect".into(),
            );
        }
        return Ok(planned);
    }
    let published = publish(&layout, opts.publish_address)?;
    if opts.publish_address != Ipv4Addr::LOCALHOST && !published.is_empty() {
        planned.warnings.push(format!(
            "published ports listen on {}, not only on this host's loopback",
            opts.publish_address
        ));
    }
    if layout.mode == NetworkMode::Host {
        planned.warnings.push(
            "network mode `host`: the guest has this host's network, unrestricted (no egress gate, no address filtering)".into(),
        );
        planned.give_host_ca();
        planned.config = NetworkConfig::User {
            mode: NetworkMode::Host,
            restrict: false,
            published,
            gates: Vec::new(),
            udp_relays: Vec::new(),
        };
        return Ok(planned);
    }
    for p in [gate.program, gate.egress_log, gate.slots_dir]
        .into_iter()
        .chain(gate.audit.map(|(_, home)| home))
    {
        if p.to_str().is_none() {
            return Err(bad(
                format!(
                    "{}: not UTF-8; the egress gate is given its paths as text",
                    p.display()
                ),
                "use an MVM_HOME (and mvmctl location) whose path is UTF-8",
            ));
        }
    }
    let forwards: usize = layout.names.iter().map(|n| n.ports.len()).sum();
    if forwards > MAX_GATE_FORWARDS {
        return Err(bad(
            format!(
                "the workload grants {forwards} (name, port) pairs; one microVM can forward at most {MAX_GATE_FORWARDS}"
            ),
            "grant fewer names or ports",
        ));
    }
    let common = common_args(opts, gate, &allow_private, &pins);
    let with = |extra: Vec<String>| {
        let mut argv = common.clone();
        argv.extend(extra);
        argv
    };
    let mut gates = Vec::new();
    for name in &layout.names {
        for port in &name.ports {
            let grant = format!("{}:{port}", name.host);
            gates.push(GateForward {
                guest_address: name.addr,
                guest_port: *port,
                argv: with(vec!["--to".into(), grant.clone(), "--grant".into(), grant]),
            });
        }
    }
    if layout.proxy {
        let mut extra = Vec::new();
        for g in &layout.grants {
            extra.push("--grant".into());
            extra.push(format!("{}:{}", g.host, g.port));
        }
        gates.push(GateForward {
            guest_address: net::PROXY,
            guest_port: net::PROXY_PORT,
            argv: with(extra),
        });
        for (k, v) in layout.proxy_env() {
            planned.env.push((k.to_string(), v));
        }
        planned.give_host_ca();
    }
    match &layout.resolver {
        Resolver::Grants => {
            let mut extra = vec!["--dns".to_string()];
            for n in &layout.names {
                extra.push("--name".into());
                extra.push(format!("{}={}", n.host, n.addr));
            }
            gates.push(GateForward {
                guest_address: net::RESOLVER,
                guest_port: net::DNS_PORT,
                argv: with(extra),
            });
        }
        Resolver::Relay(HostPort { host, port }) => {
            let to = format!("{host}:{port}");
            gates.push(GateForward {
                guest_address: net::RESOLVER,
                guest_port: net::DNS_PORT,
                argv: with(vec!["--to".into(), to.clone(), "--grant".into(), to]),
            });
        }
        Resolver::None | Resolver::Host => {}
    }
    let udp_relays = relays(&layout, &published)?;
    planned.config = NetworkConfig::User {
        mode: NetworkMode::Bridge,
        restrict: true,
        published,
        gates,
        udp_relays,
    };
    Ok(planned)
}

/// One [`UdpRelay`] per published UDP port, each with a loopback TCP port
/// free now for QEMU's forward to the guest's relay.
fn relays(layout: &Layout, published: &[Published]) -> Result<Vec<UdpRelay>, RuntimeError> {
    let udp = published.iter().filter(|p| p.proto == Proto::Udp);
    let mut out = Vec::new();
    for ((guest_port, guest_relay_port), p) in layout.udp_relays().into_iter().zip(udp) {
        let relay_host_port =
            free_port(Ipv4Addr::LOCALHOST, Proto::Tcp).map_err(|e| RuntimeError::Io {
                what: format!("choosing a free loopback TCP port to relay UDP port {guest_port}"),
                source: e,
            })?;
        out.push(UdpRelay {
            guest_port,
            host_address: p.host_address,
            host_port: p.host_port,
            guest_relay_port,
            relay_host_port,
        });
    }
    Ok(out)
}

fn common_args(
    opts: &NetworkOptions,
    gate: &GateContext<'_>,
    allow_private: &[String],
    pins: &[String],
) -> Vec<String> {
    // Paths were checked to be UTF-8 by `plan`.
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut argv = vec![
        path(gate.program),
        "__egress-proxy".into(),
        "--json-log".into(),
        path(gate.egress_log),
        "--slots".into(),
        path(gate.slots_dir),
        "--max-connections".into(),
        opts.max_connections.to_string(),
        "--max-rate".into(),
        opts.max_rate.to_string(),
        "--idle-timeout".into(),
        opts.idle_secs.to_string(),
    ];
    for g in allow_private {
        argv.push("--allow-private".into());
        argv.push(g.clone());
    }
    for p in pins {
        argv.push("--pin".into());
        argv.push(p.clone());
    }
    if let Some((instance, home)) = gate.audit {
        argv.push("--audit-home".into());
        argv.push(path(home));
        argv.push("--instance".into());
        argv.push(instance.to_string());
    }
    argv
}

/// Each `--allow-private-egress` must be exactly one of the grants: the
/// operator widens a grant the declaration made, never adds one.
fn check_allow_private(given: &[String], granted: &[String]) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    for g in given {
        // HOST:PORT, the host spelled as the layout spells it.
        let g = match g.rsplit_once(':') {
            Some((host, port)) => format!("{}:{port}", mvm_launch::net::normalize(host)),
            None => g.to_ascii_lowercase(),
        };
        if !granted.contains(&g) {
            return Err(bad(
                format!(
                    "--allow-private-egress {g}: not one of the workload's egress grants ({})",
                    if granted.is_empty() {
                        "it has none".to_string()
                    } else {
                        granted.join(", ")
                    }
                ),
                "name a HOST:PORT exactly as the declaration grants it",
            ));
        }
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// `HOST=IP` for a granted name; returned normalized.
fn check_pins(given: &[String], layout: &Layout) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    for p in given {
        let Some((host, ip)) = p.split_once('=') else {
            return Err(bad(
                format!("--egress-pin {p}: expected HOST=IP"),
                "for example --egress-pin api.example.com=127.0.0.1",
            ));
        };
        let host = mvm_launch::net::normalize(host);
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return Err(bad(
                format!("--egress-pin {p}: `{ip}` is not an IP address"),
                "for example --egress-pin api.example.com=127.0.0.1",
            ));
        };
        let relay_host = match &layout.resolver {
            Resolver::Relay(hp) => Some(hp.host.as_str()),
            _ => None,
        };
        if !layout.names.iter().any(|n| n.host == host) && relay_host != Some(host.as_str()) {
            return Err(bad(
                format!("--egress-pin {p}: `{host}` is not a granted name of this workload"),
                "pin only a name the declaration grants",
            ));
        }
        if out
            .iter()
            .any(|o: &String| o.split_once('=').is_some_and(|(h, _)| h == host))
        {
            return Err(bad(
                format!("--egress-pin {p}: `{host}` is pinned twice"),
                "give one --egress-pin per name",
            ));
        }
        out.push(format!("{host}={ip}"));
    }
    Ok(out)
}

/// Published ports, with `0` replaced by a port free now on `address`.
fn publish(layout: &Layout, address: Ipv4Addr) -> Result<Vec<Published>, RuntimeError> {
    let mut out = Vec::new();
    for p in &layout.published {
        let host_port = if p.host != 0 {
            p.host
        } else {
            free_port(address, p.proto).map_err(|e| RuntimeError::Io {
                what: format!(
                    "choosing a free {} port on {address} for guest port {}",
                    proto_str(p.proto),
                    p.guest
                ),
                source: e,
            })?
        };
        out.push(Published {
            proto: p.proto,
            guest_port: p.guest,
            host_address: address,
            host_port,
        });
    }
    Ok(out)
}

/// A port the kernel hands out now. QEMU binds it a moment later; in the
/// rare case something else takes it first, QEMU fails to start and `up`
/// says so with QEMU's message.
fn free_port(address: Ipv4Addr, proto: Proto) -> std::io::Result<u16> {
    Ok(match proto {
        Proto::Tcp => std::net::TcpListener::bind((address, 0))?
            .local_addr()?
            .port(),
        Proto::Udp => std::net::UdpSocket::bind((address, 0))?
            .local_addr()?
            .port(),
    })
}

/// The VMM's view of a recorded network.
pub fn guest_network(config: &NetworkConfig) -> mvm_vmm::GuestNetwork {
    match config {
        NetworkConfig::None => mvm_vmm::GuestNetwork::None,
        NetworkConfig::User {
            restrict,
            published,
            gates,
            udp_relays,
            ..
        } => mvm_vmm::GuestNetwork::User {
            address: format!("{}/{}", net::GUEST, net::PREFIX),
            forwards: published
                .iter()
                // A relayed UDP port is the supervisor's to listen on; QEMU
                // forwards its relay's TCP port instead.
                .filter(|p| {
                    p.proto != Proto::Udp
                        || !udp_relays
                            .iter()
                            .any(|r| r.guest_port == p.guest_port && r.host_port == p.host_port)
                })
                .map(|p| mvm_vmm::PortForward {
                    protocol: match p.proto {
                        Proto::Tcp => mvm_vmm::Protocol::Tcp,
                        Proto::Udp => mvm_vmm::Protocol::Udp,
                    },
                    host_address: p.host_address,
                    host_port: p.host_port,
                    guest_port: p.guest_port,
                })
                .chain(udp_relays.iter().map(|r| mvm_vmm::PortForward {
                    protocol: mvm_vmm::Protocol::Tcp,
                    host_address: Ipv4Addr::LOCALHOST,
                    host_port: r.relay_host_port,
                    guest_port: r.guest_relay_port,
                }))
                .collect(),
            restrict: *restrict,
            exec_forwards: gates
                .iter()
                .map(|g| mvm_vmm::ExecForward {
                    guest_addr: g.guest_address,
                    guest_port: g.guest_port,
                    argv: g.argv.clone(),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mvm_launch::{Dns, Egress, Network, PortForward};
    use std::path::PathBuf;

    fn launch(mode: NetworkMode, grants: &[(&str, u16)], dns: Dns) -> Launch {
        let mut l: Launch = serde_json::from_value(crate::launch::tests::launch()).unwrap();
        l.network = Network {
            mode,
            ports: vec![PortForward {
                guest: 8080,
                host: 0,
                proto: Proto::Tcp,
            }],
            egress: Egress::of(grants),
            dns,
        };
        l
    }

    fn ctx() -> (PathBuf, PathBuf, PathBuf) {
        (
            PathBuf::from("/opt/mvmctl"),
            PathBuf::from("/h/egress.log"),
            PathBuf::from("/h/slots"),
        )
    }

    fn run(l: &Launch, opts: &NetworkOptions) -> Result<Planned, RuntimeError> {
        let (p, log, slots) = ctx();
        plan(
            l,
            opts,
            &GateContext {
                program: &p,
                egress_log: &log,
                slots_dir: &slots,
                audit: None,
            },
        )
    }

    #[test]
    fn bridge_forwards_exactly_the_grants() {
        let l = launch(
            NetworkMode::Bridge,
            &[("api.openai.com", 443), ("pypi.org", 443)],
            Dns::System,
        );
        let p = run(&l, &NetworkOptions::default()).unwrap();
        let NetworkConfig::User {
            restrict,
            gates,
            published,
            ..
        } = &p.config
        else {
            panic!("no network");
        };
        assert!(*restrict);
        let at: Vec<String> = gates
            .iter()
            .map(|g| format!("{}:{}", g.guest_address, g.guest_port))
            .collect();
        assert_eq!(
            at,
            [
                "10.0.2.101:443",
                "10.0.2.102:443",
                "10.0.2.100:3128",
                "10.0.2.99:53"
            ]
        );
        assert!(gates[0].argv.ends_with(&[
            "--to".into(),
            "api.openai.com:443".into(),
            "--grant".into(),
            "api.openai.com:443".into()
        ]));
        assert!(gates[3].argv.contains(&"--dns".to_string()));
        assert_eq!(published.len(), 1);
        assert_ne!(published[0].host_port, 0, "0 is replaced by a free port");
        assert_eq!(published[0].host_address, Ipv4Addr::LOCALHOST);
        assert!(p.env.iter().any(|(k, _)| k == "HTTPS_PROXY"));
    }

    #[test]
    fn operator_options_must_name_grants() {
        let l = launch(NetworkMode::Bridge, &[("pypi.org", 443)], Dns::None);
        let opts = |ap: &[&str], pins: &[&str]| NetworkOptions {
            allow_private: ap.iter().map(|s| s.to_string()).collect(),
            pins: pins.iter().map(|s| s.to_string()).collect(),
            ..NetworkOptions::default()
        };
        assert!(run(&l, &opts(&["pypi.org:443"], &["pypi.org=127.0.0.1"])).is_ok());
        for (ap, pins) in [
            (&["pypi.org:80"][..], &[][..]),
            (&["evil.com:443"], &[]),
            (&[], &["evil.com=127.0.0.1"]),
            (&[], &["pypi.org=localhost"]),
            (&[], &["pypi.org"]),
            (&[], &["pypi.org=1.1.1.1", "PyPI.org.=2.2.2.2"]),
        ] {
            assert!(run(&l, &opts(ap, pins)).is_err(), "{ap:?} {pins:?}");
        }
        let NetworkConfig::User { gates, .. } =
            run(&l, &opts(&["PyPI.org:443"], &["pypi.org=127.0.0.1"]))
                .unwrap()
                .config
        else {
            panic!()
        };
        let argv = &gates[0].argv;
        assert!(
            argv.windows(2)
                .any(|w| w == ["--allow-private", "pypi.org:443"])
        );
        assert!(
            argv.windows(2)
                .any(|w| w == ["--pin", "pypi.org=127.0.0.1"])
        );
    }

    #[test]
    fn more_forwards_than_qemu_takes_in_one_argument_are_refused() {
        let hosts: Vec<String> = (0..=MAX_GATE_FORWARDS / 2)
            .map(|i| format!("h{i}.example"))
            .collect();
        let grants: Vec<(&str, u16)> = hosts
            .iter()
            .flat_map(|h| [(h.as_str(), 443), (h.as_str(), 80)])
            .collect();
        let e = run(
            &launch(NetworkMode::Bridge, &grants, Dns::None),
            &NetworkOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at most 128"), "{e}");
        assert!(
            run(
                &launch(NetworkMode::Bridge, &grants[..MAX_GATE_FORWARDS], Dns::None),
                &NetworkOptions::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn only_certificates_of_the_host_bundle_reach_the_guest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ca.pem");
        std::fs::write(
            &p,
            "junk\n-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let out = String::from_utf8(certificates(&p).unwrap()).unwrap();
        assert_eq!(
            out,
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
        );
        std::fs::write(
            &p,
            "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(certificates(&p).is_none());
        assert!(
            certificates(d.path()).is_none(),
            "a directory is not a bundle"
        );
    }

    #[test]
    fn none_has_no_device_and_host_warns() {
        let none = run(
            &launch(NetworkMode::None, &[], Dns::None),
            &NetworkOptions::default(),
        )
        .unwrap();
        assert_eq!(none.config, NetworkConfig::None);
        let host = run(
            &launch(NetworkMode::Host, &[], Dns::System),
            &NetworkOptions::default(),
        )
        .unwrap();
        assert!(matches!(
            host.config,
            NetworkConfig::User {
                restrict: false,
                ..
            }
        ));
        assert!(host.warnings[0].contains("unrestricted"));
    }

    fn with_udp(mode: NetworkMode) -> Launch {
        let mut l = launch(mode, &[], Dns::None);
        l.network.ports.push(PortForward {
            guest: 9999,
            host: 0,
            proto: Proto::Udp,
        });
        l
    }

    /// Bridge mode relays a published UDP port over a TCP forward; `port`
    /// and `ps` still show the UDP mapping; host mode forwards UDP as is.
    #[test]
    fn bridge_relays_udp_over_tcp_and_host_forwards_it() {
        let p = run(&with_udp(NetworkMode::Bridge), &NetworkOptions::default()).unwrap();
        let NetworkConfig::User {
            published,
            udp_relays,
            ..
        } = &p.config
        else {
            panic!("no network");
        };
        assert_eq!(published.len(), 2);
        let udp = published[1];
        assert_eq!(
            udp.describe(),
            format!("9999/udp -> 127.0.0.1:{}", udp.host_port)
        );
        assert_eq!(udp_relays.len(), 1);
        let r = udp_relays[0];
        assert_eq!(
            (
                r.guest_port,
                r.host_address,
                r.host_port,
                r.guest_relay_port
            ),
            (
                9999,
                Ipv4Addr::LOCALHOST,
                udp.host_port,
                net::UDP_RELAY_BASE
            )
        );
        assert_ne!(r.relay_host_port, 0);
        let mvm_vmm::GuestNetwork::User { forwards, .. } = guest_network(&p.config) else {
            panic!("no network");
        };
        let shown: Vec<String> = forwards
            .iter()
            .map(|f| {
                format!(
                    "{:?} {}:{}->{}",
                    f.protocol, f.host_address, f.host_port, f.guest_port
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                format!("Tcp 127.0.0.1:{}->8080", published[0].host_port),
                format!("Tcp 127.0.0.1:{}->61000", r.relay_host_port),
            ]
        );
        // A record from before relays existed still loads (and forwards UDP).
        let mut old = serde_json::to_value(&p.config).unwrap();
        old["user"].as_object_mut().unwrap().remove("udp_relays");
        let old: NetworkConfig = serde_json::from_value(old).unwrap();
        let mvm_vmm::GuestNetwork::User { forwards, .. } = guest_network(&old) else {
            panic!("no network");
        };
        assert_eq!(forwards.len(), 2);
        assert!(matches!(forwards[1].protocol, mvm_vmm::Protocol::Udp));

        let host = run(&with_udp(NetworkMode::Host), &NetworkOptions::default()).unwrap();
        let NetworkConfig::User { udp_relays, .. } = &host.config else {
            panic!("no network");
        };
        assert!(udp_relays.is_empty());
        let mvm_vmm::GuestNetwork::User { forwards, .. } = guest_network(&host.config) else {
            panic!("no network");
        };
        assert!(matches!(forwards[1].protocol, mvm_vmm::Protocol::Udp));
    }
}
