//! Where the host's connections come from. The protocol itself only needs
//! a reader and a writer; this trait hides whether they are a virtio-serial
//! port (the VM today; vsock later), a unix socket or stdio (dev mode).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub struct Connection {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
}

pub trait Transport {
    /// Waits for the host's next connection; `None` when there will be no more.
    fn accept(&mut self) -> io::Result<Option<Connection>>;
}

/// `--stdio`: exactly one connection, on stdin/stdout.
pub struct Stdio {
    used: bool,
}

impl Stdio {
    pub fn new() -> Stdio {
        Stdio { used: false }
    }
}

impl Transport for Stdio {
    fn accept(&mut self) -> io::Result<Option<Connection>> {
        if std::mem::replace(&mut self.used, true) {
            return Ok(None);
        }
        Ok(Some(Connection {
            reader: Box::new(io::stdin()),
            writer: Box::new(io::stdout()),
        }))
    }
}

/// `--socket PATH`: a listening unix socket; every client gets its own
/// connection (and its own hello).
pub struct Socket {
    listener: UnixListener,
}

impl Socket {
    pub fn bind(path: &Path) -> io::Result<Socket> {
        // A socket file left by an earlier run would make bind fail.
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        Ok(Socket {
            listener: UnixListener::bind(path)?,
        })
    }
}

impl Transport for Socket {
    fn accept(&mut self) -> io::Result<Option<Connection>> {
        let (stream, _) = self.listener.accept()?;
        Ok(Some(Connection {
            reader: Box::new(stream.try_clone()?),
            writer: Box::new(stream),
        }))
    }
}

/// The virtio-serial port named `mvm.agent`. A port has no accept: while no
/// host is connected to QEMU's end, reads return EOF at once and poll
/// reports a hang-up, so "accepting" means waiting for that to clear.
pub struct VirtioSerial {
    port: File,
}

/// How often to look again for a host while none is connected.
const HOST_POLL_INTERVAL: Duration = Duration::from_millis(20);

impl VirtioSerial {
    pub const PORT_NAME: &str = "mvm.agent";

    /// Finds and opens the port, waiting up to `wait` for the device to appear.
    pub fn open(wait: Duration) -> io::Result<VirtioSerial> {
        VirtioSerial::open_named(Self::PORT_NAME, wait)
    }

    /// Finds and opens the port named `name`, waiting up to `wait`.
    pub fn open_named(name: &str, wait: Duration) -> io::Result<VirtioSerial> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(device) = find_port(name)? {
                let port = File::options().read(true).write(true).open(&device)?;
                return Ok(VirtioSerial { port });
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no virtio-serial port named {name} appeared within {wait:?}"),
                ));
            }
            thread::sleep(HOST_POLL_INTERVAL);
        }
    }

    fn host_connected(&self) -> io::Result<bool> {
        let mut fd = libc::pollfd {
            fd: self.port.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut fd, 1, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd.revents & libc::POLLHUP == 0)
    }
}

impl Transport for VirtioSerial {
    fn accept(&mut self) -> io::Result<Option<Connection>> {
        while !self.host_connected()? {
            thread::sleep(HOST_POLL_INTERVAL);
        }
        Ok(Some(Connection {
            reader: Box::new(self.port.try_clone()?),
            writer: Box::new(self.port.try_clone()?),
        }))
    }
}

/// `/dev/<port>` for the port whose `/sys/class/virtio-ports/<port>/name` is `name`.
fn find_port(name: &str) -> io::Result<Option<PathBuf>> {
    let dir = match std::fs::read_dir("/sys/class/virtio-ports") {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in dir {
        let entry = entry?;
        let port_name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        let device = Path::new("/dev").join(entry.file_name());
        if port_name.trim() == name && device.exists() {
            return Ok(Some(device));
        }
    }
    Ok(None)
}
