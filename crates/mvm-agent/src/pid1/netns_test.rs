//! The routing policy against a real kernel: a fresh network namespace
//! with `lo` and a TUN device named `eth0` standing in for virtio-net,
//! the bridge rules installed over rtnetlink, and real sockets showing
//! that granted pairs are routed out of eth0 while everything else fails
//! at once with EACCES. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mvm_launch::{Dns, Network, NetworkMode};

use super::guest_net::apply;
use super::net::{self, Address};
use super::policy;

const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
// linux/if_tun.h
const TUNSETIFF: libc::c_ulong = 0x400454ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

fn check(rc: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(rc)
}

/// A TUN device `name` in the current namespace, alive while the fd is.
fn tun(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: open(2) of a constant path; the fd is owned right below.
    let raw = check(
        unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) },
        "opening /dev/net/tun",
    )?;
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
    // SAFETY: TUNSETIFF reads and writes an ifreq.
    check(
        unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut libc::ifreq) },
        "creating the tun device",
    )?;
    Ok(fd)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: plain old data.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
    Icmp,
}

/// A non-blocking connect (TCP) or one sendto (UDP, raw ICMP) to `to`,
/// optionally from `from`. Ok(true): routed (EINPROGRESS or sent);
/// Err: the errno, which must come back at once.
fn attempt(kind: Kind, to: &str, from: Option<&str>) -> Result<bool, i32> {
    let to: SocketAddr = to.parse().unwrap();
    let family = if to.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let (ty, proto) = match kind {
        Kind::Tcp => (libc::SOCK_STREAM, 0),
        Kind::Udp => (libc::SOCK_DGRAM, 0),
        Kind::Icmp => (libc::SOCK_RAW, libc::IPPROTO_ICMP),
    };
    // SAFETY: plain socket(2), owned right below.
    let raw = unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) };
    assert!(raw >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if let Some(from) = from {
        let (addr, len) = sockaddr(from.parse().unwrap());
        // SAFETY: addr is valid for len.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        assert_eq!(rc, 0, "bind {from}: {}", io::Error::last_os_error());
    }
    let (addr, len) = sockaddr(to);
    let start = Instant::now();
    let rc = match kind {
        // SAFETY: addr is valid for len.
        Kind::Tcp => unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_storage).cast(),
                len,
            )
        },
        Kind::Udp | Kind::Icmp => {
            // An ICMP echo request: type 8, code 0, checksum of the rest.
            let payload: [u8; 8] = [8, 0, 0xf7, 0xff, 0, 0, 0, 0];
            // SAFETY: payload and addr are valid for their lengths.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    payload.as_ptr().cast(),
                    payload.len(),
                    0,
                    (&addr as *const libc::sockaddr_storage).cast(),
                    len,
                ) as libc::c_int
            }
        }
    };
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{to}: the attempt itself took {:?}",
        start.elapsed()
    );
    if rc >= 0 || errno == libc::EINPROGRESS {
        Ok(true)
    } else {
        Err(errno)
    }
}

/// Waits up to `wait` for an IPv4 TCP segment to `to`:`port` on the tun
/// device with all of `flags` set (SYN 0x02, ACK 0x10).
fn saw_tcp(tun: &OwnedFd, to: Ipv4Addr, port: u16, flags: u8, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(tun.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { continue };
        let p = &buf[..n];
        if n < 24 || p[0] >> 4 != 4 || p[9] != 6 {
            continue; // not IPv4 TCP (e.g. IPv6 neighbour discovery)
        }
        let ihl = usize::from(p[0] & 0xf) * 4;
        if n < ihl + 14 {
            continue;
        }
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        let dport = u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]);
        if dst == to && dport == port && p[ihl + 13] & flags == flags {
            return true;
        }
    }
    false
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a TCP SYN from `from` to `to` into the tun device, as QEMU's
/// hostfwd would deliver an inbound connection.
fn inject_syn(tun: &OwnedFd, from: (Ipv4Addr, u16), to: (Ipv4Addr, u16)) {
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&from.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&to.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes()); // sequence number
    tcp[12] = 5 << 4; // header length in words
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let pseudo = [&from.0.octets()[..], &to.0.octets()[..], &[0, 6, 0, 20][..]];
    let sum = checksum(&[pseudo[0], pseudo[1], pseudo[2], &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&from.0.octets());
    ip[16..20].copy_from_slice(&to.0.octets());
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let packet = [ip, tcp].concat();
    // SAFETY: packet is readable for its length.
    let n = unsafe { libc::write(tun.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
    assert_eq!(n, 40, "writing the SYN: {}", io::Error::last_os_error());
}

/// A fresh network namespace for this thread: `lo` up, and a TUN device
/// as `eth0` at 10.0.2.15/24 (its fd shows what leaves through it).
fn fresh_namespace() -> OwnedFd {
    // SAFETY: unshare(2) on this thread only; it owns nothing shared.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        io::Error::last_os_error()
    );
    net::configure(None).expect("bringing lo up");
    let tun = tun("eth0").expect("a tun device as eth0");
    net::bring_up(
        "eth0",
        Address {
            ip: GUEST,
            prefix: 24,
        },
    )
    .expect("eth0 up");
    tun
}

/// A new root holding launch.json with `network`, or none at all.
fn root_with(network: Option<&Network>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let Some(network) = network else {
        return root;
    };
    let phases = ["before_build", "before_start", "after_start", "before_stop"];
    let launch = serde_json::json!({
        "launch_version": mvm_launch::LAUNCH_VERSION,
        "workload_id": "net", "app_name": "net",
        "ir_hash": "0".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "test"},
        "image": {"kind": "nix_packages", "packages": []},
        "dependencies": {"kind": "none"},
        "resources": {"cpu_cores": 1, "memory_mib": 256, "rootfs_size_mib": 512},
        "network": serde_json::to_value(network).unwrap(),
        "env": {},
        "entrypoints": [{"kind": "command", "name": "main", "command": ["true"], "working_dir": "/", "primary": true}],
        "primary_entrypoint": "main",
        "hooks": phases.iter().map(|p| (p.to_string(), serde_json::json!([]))).collect::<serde_json::Map<_, _>>(),
        "hook_scripts": phases.iter().map(|p| (p.to_string(), serde_json::json!(format!("hooks/{p}.sh")))).collect::<serde_json::Map<_, _>>(),
        "mounts": [], "volumes": [], "threat_tier": "untrusted",
        "source": {"files": 0, "tree_hash": "0".repeat(64)},
    });
    let dir = root.path().join("etc/mvm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("launch.json"), launch.to_string()).unwrap();
    root
}

fn read(root: &tempfile::TempDir, relative: &str) -> String {
    std::fs::read_to_string(root.path().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

fn assert_routed(cases: &[(Kind, &str, Option<&str>)]) {
    for &(kind, to, from) in cases {
        assert_eq!(
            attempt(kind, to, from),
            Ok(true),
            "{to} from {from:?} is routed"
        );
    }
}

fn assert_refused(cases: &[(Kind, &str, Option<&str>)]) {
    for &(kind, to, from) in cases {
        assert_eq!(
            attempt(kind, to, from),
            Err(libc::EACCES),
            "{to} from {from:?} is refused at once with EACCES"
        );
    }
}

fn bridge() {
    let tun = fresh_namespace();
    let network = policy::tests::network(
        &[
            ("pypi.org", 443),
            ("files.example.com", 80),
            ("1.2.3.4", 443),
        ],
        Dns::System,
        &[(8080, true), (5353, false)],
    );
    let root = root_with(Some(&network));
    let done = apply(root.path(), true).expect("applying the bridge network");
    assert!(done.starts_with("bridge"), "{done}");
    assert!(read(&root, "etc/hosts").contains("10.0.2.101\tpypi.org\t"));
    assert!(read(&root, "etc/hosts").contains("10.0.2.102\tfiles.example.com\t"));
    assert!(read(&root, "etc/resolv.conf").contains("nameserver 10.0.2.99\n"));

    // Local traffic is untouched (rule 0, `lookup local`).
    for at in ["127.0.0.1:0", "10.0.2.15:0", "[::1]:0"] {
        let listener = TcpListener::bind(at).unwrap();
        let addr = listener.local_addr().unwrap();
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connecting to the local listener {addr}: {e}"));
    }
    assert_routed(&[
        (Kind::Tcp, "10.0.2.101:443", None),  // pypi.org
        (Kind::Tcp, "10.0.2.102:80", None),   // files.example.com
        (Kind::Tcp, "10.0.2.100:3128", None), // the proxy
        (Kind::Tcp, "10.0.2.99:53", None),    // the resolver, TCP
        // Published ports answer the host (a server bound to any address
        // sends UDP before the kernel picks its source).
        (Kind::Udp, "10.0.2.2:40000", Some("0.0.0.0:5353")),
        (Kind::Udp, "10.0.2.2:40000", Some("10.0.2.15:5353")),
        // ... and a client elsewhere, when `up --publish-address` listens
        // beyond loopback (QEMU shows such clients with their own address).
        (Kind::Udp, "192.0.2.7:40000", Some("0.0.0.0:5353")),
    ]);
    assert!(
        saw_tcp(
            &tun,
            Ipv4Addr::new(10, 0, 2, 101),
            443,
            0x02,
            Duration::from_secs(3)
        ),
        "the granted connection left through eth0"
    );
    // An inbound connection to a published port, as hostfwd delivers it,
    // is answered; one to an unpublished port is not (its SYN-ACK is refused).
    let published = TcpListener::bind("0.0.0.0:8080").unwrap();
    let unpublished = TcpListener::bind("0.0.0.0:8081").unwrap();
    let host = Ipv4Addr::new(10, 0, 2, 2);
    inject_syn(&tun, (host, 40001), (GUEST, 8080));
    assert!(
        saw_tcp(&tun, host, 40001, 0x12, Duration::from_secs(3)),
        "the published port's SYN-ACK left through eth0"
    );
    inject_syn(&tun, (host, 40002), (GUEST, 8081));
    assert!(
        !saw_tcp(&tun, host, 40002, 0x12, Duration::from_millis(500)),
        "an unpublished port cannot answer"
    );
    drop((published, unpublished));
    assert_refused(&[
        (Kind::Tcp, "10.0.2.101:80", None), // a granted name's other port
        (Kind::Tcp, "10.0.2.102:443", None),
        (Kind::Tcp, "10.0.2.100:80", None),
        (Kind::Tcp, "10.0.2.2:22", None),    // the host alias
        (Kind::Tcp, "10.0.2.3:53", None),    // QEMU's resolver
        (Kind::Tcp, "1.2.3.4:443", None),    // an IP grant: proxy only
        (Kind::Tcp, "10.0.2.103:443", None), // an unassigned grant address
        (Kind::Udp, "10.0.2.99:53", None),   // DNS over UDP
        (Kind::Udp, "10.0.2.101:443", None), // UDP to a granted pair
        (Kind::Udp, "10.0.2.2:40000", Some("10.0.2.15:5354")),
        (Kind::Tcp, "10.0.2.2:40000", Some("10.0.2.15:8081")),
        (Kind::Udp, "10.0.2.2:40000", Some("10.0.2.15:8080")), // tcp only
        (Kind::Icmp, "10.0.2.101:0", None),
        (Kind::Udp, "[2001:db8::1]:443", None),
        (Kind::Tcp, "[2001:db8::1]:443", None),
    ]);
    // A refused request names what it was: here the route again (made
    // before the rules, which would refuse the kernel's gateway check).
    let e = apply(root.path(), true).unwrap_err().to_string();
    assert!(
        e.contains("adding route `default via 10.0.2.2 dev eth0`"),
        "{e}"
    );
}

fn host() {
    let tun = fresh_namespace();
    let mut network = policy::tests::network(&[], Dns::System, &[]);
    network.mode = NetworkMode::Host;
    let root = root_with(Some(&network));
    let done = apply(root.path(), true).expect("applying the host network");
    assert!(done.starts_with("host"), "{done}");
    assert!(read(&root, "etc/resolv.conf").contains("nameserver 10.0.2.3\n"));
    // No rules: anything goes, through the default route.
    assert_routed(&[
        (Kind::Tcp, "192.0.2.1:443", None),
        (Kind::Udp, "10.0.2.3:53", None),
    ]);
    assert!(
        saw_tcp(
            &tun,
            Ipv4Addr::new(192, 0, 2, 1),
            443,
            0x02,
            Duration::from_secs(3)
        ),
        "the connection left through the default route"
    );
}

fn builder() {
    let _tun = fresh_namespace();
    // The image's own launch.json grants pypi.org; the builder's VM still
    // gets only its gate, and the image's /etc is not touched.
    let network = policy::tests::network(&[("pypi.org", 443)], Dns::System, &[]);
    let root = root_with(Some(&network));
    apply(root.path(), false).expect("applying the builder's network");
    assert!(
        !root.path().join("etc/hosts").exists(),
        "/etc is left alone"
    );
    assert_routed(&[(Kind::Tcp, "10.0.2.100:3128", None)]);
    assert_refused(&[
        (Kind::Tcp, "10.0.2.101:443", None),
        (Kind::Tcp, "10.0.2.2:80", None),
        (Kind::Udp, "10.0.2.3:53", None),
    ]);
}

fn none_with_a_device() {
    let _tun = fresh_namespace();
    let mut network = policy::tests::network(&[("pypi.org", 443)], Dns::System, &[]);
    network.mode = NetworkMode::None;
    let root = root_with(Some(&network));
    apply(root.path(), true).expect("applying network none");
    assert_refused(&[
        (Kind::Tcp, "10.0.2.100:3128", None),
        (Kind::Tcp, "10.0.2.101:443", None),
    ]);
}

/// Runs `case` in its own thread (a namespace switch must not leak into
/// other tests), or skips it, saying why, when not root.
fn as_root(name: &str, case: fn()) {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping {name}: a network namespace needs root");
        return;
    }
    if let Err(panic) = std::thread::spawn(case).join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn bridge_routes_the_grants_and_refuses_the_rest_at_once() {
    as_root(
        "bridge_routes_the_grants_and_refuses_the_rest_at_once",
        bridge,
    );
}

#[test]
fn host_mode_gets_a_default_route_and_no_rules() {
    as_root("host_mode_gets_a_default_route_and_no_rules", host);
}

#[test]
fn the_image_builder_reaches_only_the_proxy() {
    as_root("the_image_builder_reaches_only_the_proxy", builder);
}

#[test]
fn network_none_with_a_device_refuses_everything() {
    as_root(
        "network_none_with_a_device_refuses_everything",
        none_with_a_device,
    );
}
