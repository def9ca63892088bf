//! Guest network interfaces, configured by PID 1 from the kernel command
//! line: `lo` always comes up (services bind to 127.0.0.1); `eth0` only
//! when the host attached a network and passed `mvm.ip=ADDR/PREFIX`.
//!
//! Plain ioctls rather than netlink: two addresses and two flags are all
//! a microVM needs, and there is no `ip` binary in the initramfs.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

// linux/sockios.h; the libc crate only exports the getters for Linux.
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
const SIOCSIFADDR: libc::c_ulong = 0x8916;
const SIOCSIFNETMASK: libc::c_ulong = 0x891c;

/// The interface a QEMU virtio-net device appears as (no udev renames it).
pub(super) const GUEST_NIC: &str = "eth0";
/// virtio_net probes asynchronously after its module loads.
const NIC_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub ip: Ipv4Addr,
    pub prefix: u8,
}

impl Address {
    /// `10.0.2.15/24`.
    pub fn parse(text: &str) -> Option<Address> {
        let (ip, prefix) = text.split_once('/')?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        Some(Address {
            ip: ip.parse().ok()?,
            prefix,
        })
    }

    pub fn netmask(self) -> Ipv4Addr {
        let bits = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        Ipv4Addr::from(bits)
    }
}

/// Brings `lo` up, and `eth0` with `address` when one is given.
pub fn configure(address: Option<Address>) -> io::Result<()> {
    let socket = Socket::new()?;
    socket.up("lo")?;
    if let Some(address) = address {
        wait_for_nic()?;
        bring_up(GUEST_NIC, address)?;
    }
    Ok(())
}

/// Sets `address` on interface `name` and brings it up.
pub(super) fn bring_up(name: &str, address: Address) -> io::Result<()> {
    let socket = Socket::new()?;
    socket.set_addr(name, SIOCSIFADDR, address.ip)?;
    socket.set_addr(name, SIOCSIFNETMASK, address.netmask())?;
    socket.up(name)
}

fn wait_for_nic() -> io::Result<()> {
    let path = Path::new("/sys/class/net").join(GUEST_NIC);
    let deadline = Instant::now() + NIC_WAIT;
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{GUEST_NIC} did not appear; is the virtio_net module in the initramfs?"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

struct Socket(libc::c_int);

impl Socket {
    fn new() -> io::Result<Socket> {
        // SAFETY: plain socket(2); the descriptor is owned by the returned value.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket(fd))
    }

    fn request(name: &str) -> io::Result<libc::ifreq> {
        let c = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let bytes = c.as_bytes_with_nul();
        if bytes.len() > libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name too long",
            ));
        }
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        Ok(req)
    }

    fn ioctl(&self, op: libc::c_ulong, req: &mut libc::ifreq, what: &str) -> io::Result<()> {
        // SAFETY: `req` is a valid ifreq for these SIOC* requests.
        if unsafe { libc::ioctl(self.0, op as _, req as *mut libc::ifreq) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
        }
        Ok(())
    }

    fn up(&self, name: &str) -> io::Result<()> {
        let mut req = Socket::request(name)?;
        self.ioctl(
            libc::SIOCGIFFLAGS,
            &mut req,
            &format!("reading {name}'s flags"),
        )?;
        // SAFETY: SIOCGIFFLAGS filled the flags member.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        self.ioctl(SIOCSIFFLAGS, &mut req, &format!("bringing {name} up"))
    }

    fn set_addr(&self, name: &str, op: libc::c_ulong, ip: Ipv4Addr) -> io::Result<()> {
        let mut req = Socket::request(name)?;
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes) and the
        // kernel reads it as sockaddr_in for AF_INET.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&sin as *const libc::sockaddr_in).cast::<u8>(),
                (&mut req.ifr_ifru.ifru_addr as *mut libc::sockaddr).cast::<u8>(),
                std::mem::size_of::<libc::sockaddr_in>(),
            );
        }
        self.ioctl(op, &mut req, &format!("setting {ip} on {name}"))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_masks() {
        let a = Address::parse("10.0.2.15/24").unwrap();
        assert_eq!(a.ip, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(a.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(
            Address::parse("1.2.3.4/0").unwrap().netmask(),
            Ipv4Addr::UNSPECIFIED
        );
        assert_eq!(
            Address::parse("1.2.3.4/32").unwrap().netmask(),
            Ipv4Addr::BROADCAST
        );
        for bad in ["10.0.2.15", "10.0.2.15/33", "x/24", "10.0.2/24"] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
    }
}
