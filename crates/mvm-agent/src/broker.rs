//! The guest end of the broker channel: guest programs ask the host for
//! what only the host may do (`mvm.web_fetch`, `mvm.web_search`).
//!
//! A program connects to [`GUEST_SOCKET`], writes one [`Call`] frame and
//! reads one [`Outcome`] frame. The agent numbers the call, passes it on
//! the `mvm.broker` port and hands the host's reply to the connection that
//! asked. Any guest program may ask (the socket is world-writable): the
//! host decides what each call may do, from the workload's grants and
//! secret bindings, never from who in the guest asked.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mvm_proto::broker::{BrokerError, BrokerRequest, Call, ErrorCode, GUEST_SOCKET, Outcome};
use mvm_proto::frame;

use crate::log;
use crate::transport::{Transport, VirtioSerial};

/// Calls waiting for the host at once; more are refused as `Busy`.
const MAX_PENDING: usize = 64;
/// A program that connects and says nothing is dropped after this long.
const CALL_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A program that does not read its answer is dropped after this long.
const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

type Writer = Arc<Mutex<Option<Box<dyn Write + Send>>>>;
type Pending = Arc<Mutex<HashMap<u64, UnixStream>>>;

/// Starts the relay if the VM has a broker port; without one, programs
/// that call find no socket and get `Unavailable` from their SDK.
pub fn start() {
    let port = match VirtioSerial::open_named(mvm_proto::broker::BROKER_PORT_NAME, Duration::ZERO) {
        Ok(port) => port,
        Err(_) => return,
    };
    if let Err(e) = serve(Box::new(port), Path::new(GUEST_SOCKET)) {
        log!("the broker channel is not available: {e}");
    }
}

/// Listens on `socket` and relays calls over `transport`'s connections.
pub fn serve(mut transport: Box<dyn Transport + Send>, socket: &Path) -> io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    // Every guest user may ask; the host decides what a call may do.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
    let writer: Writer = Arc::new(Mutex::new(None));
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    {
        let (writer, pending) = (writer.clone(), pending.clone());
        thread::spawn(move || {
            loop {
                let conn = match transport.accept() {
                    Ok(Some(c)) => c,
                    Ok(None) => return,
                    Err(e) => {
                        log!("broker channel: {e}");
                        return;
                    }
                };
                *writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.writer);
                read_replies(conn.reader, &pending);
                // The host went away: nothing pending will be answered.
                *writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
                fail_all(&pending, "the host closed the broker channel");
            }
        });
    }
    let next_id = Arc::new(AtomicU64::new(1));
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let (writer, pending, next_id) = (writer.clone(), pending.clone(), next_id.clone());
            thread::spawn(move || forward(client, &writer, &pending, &next_id));
        }
    });
    Ok(())
}

/// Reads one call from a guest program and passes it to the host.
fn forward(mut client: UnixStream, writer: &Writer, pending: &Pending, next_id: &AtomicU64) {
    let _ = client.set_read_timeout(Some(CALL_READ_TIMEOUT));
    let call = match frame::read_frame::<_, Call>(&mut client) {
        Ok(Some(call)) => call,
        Ok(None) => return,
        Err(e) => {
            answer(
                &mut client,
                ErrorCode::BadRequest,
                &format!("malformed call: {e}"),
            );
            return;
        }
    };
    let id = next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut waiting = pending.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.len() >= MAX_PENDING {
            drop(waiting);
            answer(
                &mut client,
                ErrorCode::Busy,
                &format!("{MAX_PENDING} calls are already waiting for the host"),
            );
            return;
        }
        let Ok(reply_to) = client.try_clone() else {
            return;
        };
        waiting.insert(id, reply_to);
    }
    let sent = {
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        match w.as_mut() {
            Some(w) => {
                frame::write_frame(w, &BrokerRequest { id, call }).map_err(|e| e.to_string())
            }
            None => Err("the host is not connected to the broker channel".into()),
        }
    };
    if let Err(why) = sent {
        if let Some(mut c) = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        {
            answer(&mut c, ErrorCode::Unavailable, &why);
        }
    }
}

/// A [`BrokerReply`] whose outcome stays the bytes the host sent: the
/// program that asked parses it; the agent only needs the number.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply<'a> {
    id: u64,
    #[serde(borrow)]
    outcome: &'a serde_json::value::RawValue,
}

/// Hands each reply from the host to the program waiting for it.
fn read_replies(mut reader: Box<dyn Read + Send>, pending: &Pending) {
    loop {
        let body = match frame::read_frame_bytes(&mut reader) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(e) => {
                log!("broker channel: {e}");
                return;
            }
        };
        let reply: RawReply = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                log!("broker channel: a malformed reply: {e}");
                return;
            }
        };
        let waiting = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&reply.id);
        if let Some(mut client) = waiting {
            let mut framed = Vec::with_capacity(frame::HEADER_BYTES + reply.outcome.get().len());
            framed.extend_from_slice(&(reply.outcome.get().len() as u32).to_be_bytes());
            framed.extend_from_slice(reply.outcome.get().as_bytes());
            // On its own thread, with a deadline: a program that never
            // reads its answer holds up no one else's.
            thread::spawn(move || {
                let _ = client.set_write_timeout(Some(REPLY_WRITE_TIMEOUT));
                // The program may have given up; that is its business.
                let _ = client.write_all(&framed);
            });
        }
    }
}

fn fail_all(pending: &Pending, why: &str) {
    let drained: Vec<UnixStream> = pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, c)| c)
        .collect();
    for mut c in drained {
        answer(&mut c, ErrorCode::Unavailable, why);
    }
}

fn answer(client: &mut UnixStream, code: ErrorCode, message: &str) {
    let _ = frame::write_frame(client, &Outcome::Failed(BrokerError::new(code, message)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Connection;
    use mvm_proto::broker::{BrokerReply, FetchRequest, FetchResponse};
    use std::os::unix::net::UnixStream;

    /// One "host" connection over a socket pair, answering each call with
    /// its id as the status.
    struct FakeHost(Option<UnixStream>);

    impl Transport for FakeHost {
        fn accept(&mut self) -> io::Result<Option<Connection>> {
            match self.0.take() {
                Some(s) => Ok(Some(Connection {
                    reader: Box::new(s.try_clone()?),
                    writer: Box::new(s),
                })),
                None => {
                    // Stay "connected" forever after the one connection.
                    thread::sleep(Duration::from_secs(3600));
                    Ok(None)
                }
            }
        }
    }

    /// One call, made again while the relay has not yet taken the fake
    /// host's connection (`serve` accepts it on a thread of its own, as
    /// it must not wait for a host at boot).
    fn call(socket: &Path, url: &str) -> Outcome {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut s = UnixStream::connect(socket).unwrap();
            let c = Call::WebFetch(FetchRequest {
                url: url.into(),
                method: "GET".into(),
                headers: vec![],
                body: vec![],
                timeout_ms: None,
            });
            frame::write_frame(&mut s, &c).unwrap();
            let got: Outcome = frame::read_frame(&mut s).unwrap().unwrap();
            match &got {
                Outcome::Failed(e)
                    if e.message.contains("is not connected")
                        && std::time::Instant::now() < deadline =>
                {
                    thread::sleep(Duration::from_millis(10));
                }
                _ => return got,
            }
        }
    }

    #[test]
    fn calls_are_numbered_relayed_and_answered_to_their_caller() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/broker.sock");
        let (host_end, agent_end) = UnixStream::pair().unwrap();
        serve(Box::new(FakeHost(Some(agent_end))), &socket).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        // The host: echo the URL back as the body, the id as the status.
        thread::spawn(move || {
            let mut r = host_end.try_clone().unwrap();
            let mut w = host_end;
            while let Ok(Some(req)) = frame::read_frame::<_, BrokerRequest>(&mut r) {
                let Call::WebFetch(f) = req.call else {
                    panic!()
                };
                let reply = BrokerReply {
                    id: req.id,
                    outcome: Outcome::Fetched(FetchResponse {
                        status: 200 + req.id as u16,
                        headers: vec![],
                        body: f.url.into_bytes(),
                    }),
                };
                frame::write_frame(&mut w, &reply).unwrap();
            }
        });
        let mut bodies = Vec::new();
        for url in ["https://a.example/", "https://b.example/"] {
            match call(&socket, url) {
                Outcome::Fetched(r) => bodies.push((r.status, String::from_utf8(r.body).unwrap())),
                other => panic!("{other:?}"),
            }
        }
        // A call refused while the relay was not yet connected used up
        // an id, so the first may be above 1; the second is the next.
        let first = bodies[0].0;
        assert!(first > 200, "{bodies:?}");
        assert_eq!(
            bodies,
            [
                (first, "https://a.example/".to_string()),
                (first + 1, "https://b.example/".to_string())
            ]
        );
    }

    #[test]
    fn a_program_that_never_reads_its_answer_holds_up_no_one_else() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("broker.sock");
        let (host_end, agent_end) = UnixStream::pair().unwrap();
        serve(Box::new(FakeHost(Some(agent_end))), &socket).unwrap();
        // The host answers every call with a body far larger than a socket buffer.
        thread::spawn(move || {
            let mut r = host_end.try_clone().unwrap();
            let mut w = host_end;
            while let Ok(Some(req)) = frame::read_frame::<_, BrokerRequest>(&mut r) {
                let reply = BrokerReply {
                    id: req.id,
                    outcome: Outcome::Fetched(FetchResponse {
                        status: 200,
                        headers: vec![],
                        body: vec![b'x'; 4 << 20],
                    }),
                };
                frame::write_frame(&mut w, &reply).unwrap();
            }
        });
        // Once the relay has the host (a first call is answered)...
        assert!(matches!(
            call(&socket, "https://warm.example/"),
            Outcome::Fetched(_)
        ));
        // ...a program that asks and then never reads...
        let mut stuck = UnixStream::connect(&socket).unwrap();
        let c = Call::WebFetch(FetchRequest {
            url: "https://a.example/".into(),
            method: "GET".into(),
            headers: vec![],
            body: vec![],
            timeout_ms: None,
        });
        frame::write_frame(&mut stuck, &c).unwrap();
        thread::sleep(Duration::from_millis(200));
        // ...and one that reads gets its answer.
        let (tx, rx) = std::sync::mpsc::channel();
        let s = socket.clone();
        thread::spawn(move || {
            let _ = tx.send(call(&s, "https://b.example/"));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the second program was held up");
        assert!(matches!(got, Outcome::Fetched(r) if r.status == 200));
        drop(stuck);
    }

    #[test]
    fn garbage_from_a_program_is_a_bad_request_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("broker.sock");
        let (_host_end, agent_end) = UnixStream::pair().unwrap();
        serve(Box::new(FakeHost(Some(agent_end))), &socket).unwrap();
        let mut s = UnixStream::connect(&socket).unwrap();
        s.write_all(&[0, 0, 0, 3, b'{', b'x', b'}']).unwrap();
        let got: Outcome = frame::read_frame(&mut s).unwrap().unwrap();
        let Outcome::Failed(e) = got else {
            panic!("{got:?}")
        };
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn a_host_that_goes_away_fails_the_waiting_calls() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("broker.sock");
        let (host_end, agent_end) = UnixStream::pair().unwrap();
        serve(Box::new(FakeHost(Some(agent_end))), &socket).unwrap();
        thread::spawn(move || {
            let mut r = host_end;
            // Read the call, then hang up without answering.
            let _ = frame::read_frame::<_, BrokerRequest>(&mut r);
        });
        let Outcome::Failed(e) = call(&socket, "https://a.example/") else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::Unavailable);
    }
}
