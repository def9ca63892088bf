//! Servers the gate's tests relay to. Include with `mod support;`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

/// A loopback server answering `echo:` and what it got until EOF.
pub fn echo_server() -> (u16, thread::JoinHandle<()>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(b"echo:").unwrap();
        s.write_all(&got).unwrap();
    });
    (port, h)
}
