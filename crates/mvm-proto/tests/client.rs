//! The blocking client against a scripted peer on a real socket pair:
//! reply routing by id, version checks, disconnects. (The real agent is
//! exercised in mvm-agent's tests.)

use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use mvm_proto::frame::{read_frame, write_frame};
use mvm_proto::{
    Client, ClientError, ErrorKind, ExecEvent, ExecRequest, GuestFrame, Hello, HostFrame,
    ProcessExit, Request, Response,
};

fn hello(protocol: u32) -> GuestFrame {
    GuestFrame::Hello(Hello {
        protocol,
        agent_version: "test".into(),
        capabilities: vec![],
    })
}

fn reply(id: u64, response: Response) -> GuestFrame {
    GuestFrame::Reply { id, response }
}

#[test]
fn routes_interleaved_replies_to_their_requests() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    let peer_thread = thread::spawn(move || {
        write_frame(&mut peer, &hello(1)).unwrap();
        let exec: HostFrame = read_frame(&mut peer).unwrap().unwrap();
        let ping: HostFrame = read_frame(&mut peer).unwrap().unwrap();
        assert!(matches!(exec.request, Request::Exec(_)));
        assert_eq!(ping.request, Request::Ping);
        // Answer the later request first, in the middle of the stream.
        write_frame(
            &mut peer,
            &reply(
                exec.id,
                Response::Stdout {
                    data: b"a".to_vec(),
                },
            ),
        )
        .unwrap();
        write_frame(&mut peer, &reply(ping.id, Response::Pong)).unwrap();
        write_frame(
            &mut peer,
            &reply(
                exec.id,
                Response::Stderr {
                    data: b"b".to_vec(),
                },
            ),
        )
        .unwrap();
        let exit = ProcessExit {
            code: Some(2),
            signal: None,
            timed_out: false,
        };
        write_frame(&mut peer, &reply(exec.id, Response::Exit(exit))).unwrap();
        peer
    });

    let client = Client::connect(host, Duration::from_secs(60)).unwrap();
    assert_eq!(client.hello().agent_version, "test");
    let mut stream = client.exec(ExecRequest::new(["x"])).unwrap();
    client.ping(Duration::from_secs(60)).unwrap();
    assert_eq!(
        stream.next_event().unwrap(),
        ExecEvent::Stdout(b"a".to_vec())
    );
    let out = stream.collect().unwrap();
    assert_eq!(out.stderr, b"b");
    assert_eq!(out.exit.code, Some(2));
    peer_thread.join().unwrap();
}

#[test]
fn refuses_an_agent_of_another_protocol_version() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    write_frame(&mut peer, &hello(2)).unwrap();
    let err = Client::connect(host, Duration::from_secs(60))
        .err()
        .expect("version 2 must be refused");
    assert!(matches!(
        err,
        ClientError::ProtocolMismatch {
            agent: 2,
            host: 1,
            ..
        }
    ));
    assert!(
        err.to_string().contains("rebuild the guest assets"),
        "{err}"
    );
}

#[test]
fn skips_stale_replies_before_the_hello() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    write_frame(&mut peer, &reply(99, Response::Ok)).unwrap();
    write_frame(&mut peer, &hello(1)).unwrap();
    assert!(Client::connect(host, Duration::from_secs(60)).is_ok());
}

#[test]
fn hello_timeout_is_reported_as_such() {
    let (host, _peer) = UnixStream::pair().unwrap();
    let err = Client::connect(host, Duration::from_millis(50))
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::HelloTimeout(_)), "{err}");
}

#[test]
fn agent_errors_and_disconnects_reach_the_caller() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    write_frame(&mut peer, &hello(1)).unwrap();
    let client = Client::connect(host, Duration::from_secs(60)).unwrap();

    let pending = client
        .send(Request::FileRead {
            path: "/nope".into(),
        })
        .unwrap();
    let asked: HostFrame = read_frame(&mut peer).unwrap().unwrap();
    let error = mvm_proto::AgentError {
        kind: ErrorKind::NotFound,
        message: "/nope does not exist".into(),
    };
    write_frame(&mut peer, &reply(asked.id, Response::Error(error))).unwrap();
    let err = pending.finish(None).unwrap_err();
    assert!(
        matches!(&err, ClientError::Agent { request: "file_read", error } if error.kind == ErrorKind::NotFound)
    );

    let waiting = client.send(Request::Ping).unwrap();
    drop(peer);
    let err = waiting.finish(None).unwrap_err();
    assert!(
        matches!(&err, ClientError::Disconnected(reason) if reason.contains("closed")),
        "{err}"
    );
    assert!(matches!(
        client.send(Request::Ping),
        Err(ClientError::Disconnected(_))
    ));
}

#[test]
fn garbage_from_the_peer_ends_the_connection_with_the_frame_error() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    write_frame(&mut peer, &hello(1)).unwrap();
    let client = Client::connect(host, Duration::from_secs(60)).unwrap();
    let waiting = client.send(Request::Ping).unwrap();
    use std::io::Write;
    peer.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let err = waiting.finish(None).unwrap_err();
    assert!(
        matches!(&err, ClientError::Disconnected(reason) if reason.starts_with("frame too large")),
        "{err}"
    );
}

#[test]
fn attach_asks_for_the_hello() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    let peer_thread = thread::spawn(move || {
        let asked: HostFrame = read_frame(&mut peer).unwrap().unwrap();
        assert_eq!(asked.request, Request::Hello);
        let hello = Hello {
            protocol: 1,
            agent_version: "restored".into(),
            capabilities: vec![],
        };
        write_frame(&mut peer, &reply(asked.id, Response::Hello(hello))).unwrap();
        peer
    });
    let reader = host.try_clone().unwrap();
    let client = Client::attach(reader, host, Duration::from_secs(60)).unwrap();
    assert_eq!(client.hello().agent_version, "restored");
    peer_thread.join().unwrap();
}

/// A guest that prints without end costs the host at most the kept tail.
#[test]
fn collect_tail_keeps_only_the_end_of_a_flood() {
    let (host, mut peer) = UnixStream::pair().unwrap();
    let peer_thread = thread::spawn(move || {
        write_frame(&mut peer, &hello(1)).unwrap();
        let exec: HostFrame = read_frame(&mut peer).unwrap().unwrap();
        for i in 0..1000u32 {
            let data = format!("{i:09}\n").into_bytes();
            write_frame(&mut peer, &reply(exec.id, Response::Stdout { data })).unwrap();
        }
        let exit = ProcessExit {
            code: Some(0),
            signal: None,
            timed_out: false,
        };
        write_frame(&mut peer, &reply(exec.id, Response::Exit(exit))).unwrap();
        peer
    });
    let client = Client::connect(host, Duration::from_secs(60)).unwrap();
    let (out, dropped) = client
        .exec(ExecRequest::new(["flood"]))
        .unwrap()
        .collect_tail(100)
        .unwrap();
    assert_eq!(out.stdout.len(), 100);
    assert_eq!(dropped, 10_000 - 100);
    assert!(out.stdout.ends_with(b"000000999\n"));
    peer_thread.join().unwrap();
}
