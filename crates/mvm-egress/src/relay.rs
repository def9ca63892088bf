//! Reading with time limits, and relaying bytes both ways until either side
//! closes or the connection has been idle too long.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::request::is_timeout;

/// When both directions last moved a byte.
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }
    fn left(&self, idle: Duration) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        idle.saturating_sub(self.start.elapsed().saturating_sub(last))
    }
}

/// How long a read may wait.
pub(crate) enum Budget {
    /// Until a fixed time (the request head must be complete by then).
    Deadline(Instant),
    /// While either direction moved a byte within `idle`.
    Idle {
        activity: Arc<Activity>,
        idle: Duration,
    },
}

/// A socket whose reads stop at the budget: a slow trickle cannot keep a
/// deadline open, and an idle relay ends.
pub(crate) struct Timed<S> {
    pub(crate) conn: S,
    pub(crate) budget: Budget,
}

impl<S: Conn> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let left = match &self.budget {
                Budget::Deadline(at) => at.saturating_duration_since(Instant::now()),
                Budget::Idle { activity, idle } => activity.left(*idle),
            };
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "time limit"));
            }
            self.conn.set_read_timeout(Some(left))?;
            match self.conn.read(buf) {
                Ok(n) => {
                    if let Budget::Idle { activity, .. } = &self.budget {
                        activity.touch();
                    }
                    return Ok(n);
                }
                // Check the budget again: the other direction may have moved.
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// How a relay ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The server closed (or either side failed).
    Closed,
    /// No byte moved either way for the idle limit.
    Idle,
}

/// What a relay moved, and how it ended.
#[derive(Debug)]
pub(crate) struct Relayed {
    pub(crate) end: End,
    /// Guest to server.
    pub(crate) up: u64,
    /// Server to guest.
    pub(crate) down: u64,
}

/// A writer that counts what it accepted, so a copy that fails part way
/// still says how much went through (`io::copy` reports nothing then).
struct Counted<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Relays `guest` ⇄ `upstream` until the server closes, either side fails,
/// or nothing moves for `idle`. Bytes already in `guest`'s buffer (a
/// pipelined TLS hello) go first.
pub(crate) fn relay<S: Conn>(
    mut guest: BufReader<Timed<S>>,
    to_guest: S,
    upstream: TcpStream,
    idle: Duration,
) -> io::Result<Relayed> {
    let activity = Arc::new(Activity::new());
    guest.get_mut().budget = Budget::Idle {
        activity: activity.clone(),
        idle,
    };
    to_guest.set_write_timeout(Some(idle))?;
    upstream.set_write_timeout(Some(idle))?;
    let to_server = upstream.try_clone()?;
    let closer = upstream.try_clone()?;
    let uploader = std::thread::spawn(move || {
        let mut to_server = Counted {
            inner: to_server,
            n: 0,
        };
        let result = io::copy(&mut guest, &mut to_server);
        // EOF from the guest is a half-close: the answer may still come.
        let how = if result.is_ok() {
            Shutdown::Write
        } else {
            Shutdown::Both
        };
        let _ = to_server.inner.shutdown(how);
        (result.map(drop), to_server.n)
    });
    let mut from_server = Timed {
        conn: upstream,
        budget: Budget::Idle { activity, idle },
    };
    let mut to_guest = Counted {
        inner: to_guest,
        n: 0,
    };
    let down = io::copy(&mut from_server, &mut to_guest).and_then(|_| to_guest.flush());
    // The server is done: end both directions, which also wakes the uploader.
    let _ = closer.shutdown(Shutdown::Both);
    let _ = to_guest.inner.shutdown(Shutdown::Both);
    let (up, up_bytes) = uploader
        .join()
        .unwrap_or_else(|_| (Err(io::Error::other("the upload thread panicked")), 0));
    let idle_hit = [down.as_ref().err(), up.as_ref().err()]
        .into_iter()
        .flatten()
        .any(is_timeout);
    Ok(Relayed {
        end: if idle_hit { End::Idle } else { End::Closed },
        up: up_bytes,
        down: to_guest.n,
    })
}
