//! The wire shape of messages: what the README documents is what goes out,
//! and every message survives a round trip.

use std::collections::BTreeMap;

use mvm_proto::{
    AgentError, DirEntry, ErrorKind, ExecRequest, FileKind, FileStat, FunctionError, GuestFrame,
    Hello, HookOutcome, HookPhase, HostFrame, ProcessExit, Request, Response,
};
use serde_json::json;

fn round_trip_host(request: Request) {
    let frame = HostFrame { id: 7, request };
    let text = serde_json::to_string(&frame).unwrap();
    let back: HostFrame = serde_json::from_str(&text).unwrap();
    assert_eq!(back, frame, "{text}");
}

fn round_trip_guest(response: Response) {
    let frame = GuestFrame::Reply { id: 7, response };
    let text = serde_json::to_string(&frame).unwrap();
    let back: GuestFrame = serde_json::from_str(&text).unwrap();
    assert_eq!(back, frame, "{text}");
}

#[test]
fn every_request_round_trips() {
    let mut exec = ExecRequest::new(["sh", "-c", "cat"]);
    exec.env.insert("A".into(), "1".into());
    exec.cwd = Some("/tmp".into());
    exec.stdin = vec![0, 1, 2, 255];
    exec.timeout_ms = Some(1500);
    let args = json!({"name": "ari", "n": [1, 2]})
        .as_object()
        .unwrap()
        .clone();
    for request in [
        Request::Ping,
        Request::Hello,
        Request::Configure {
            env: BTreeMap::from([("K".into(), "mvm-secret-ref:k:00".into())]),
        },
        Request::Exec(exec),
        Request::FileWrite {
            path: "/a".into(),
            data: b"\x00bin".to_vec(),
            mode: 0o600,
            append: true,
        },
        Request::FileRead { path: "/a".into() },
        Request::Stat { path: "/a".into() },
        Request::List { path: "/".into() },
        Request::Invoke {
            entrypoint: Some("greet".into()),
            args,
            timeout_ms: None,
        },
        Request::RunHook {
            phase: HookPhase::AfterStart,
            timeout_ms: Some(10),
        },
        Request::StartService { entrypoint: None },
        Request::Resume {
            now_unix_ms: 1_700_000_000_000,
            entropy: vec![9; 32],
        },
        Request::Shutdown {
            reason: "down".into(),
        },
    ] {
        round_trip_host(request);
    }
}

#[test]
fn every_response_round_trips() {
    let exit = ProcessExit {
        code: Some(3),
        signal: None,
        timed_out: false,
    };
    for response in [
        Response::Pong,
        Response::Hello(Hello {
            protocol: 1,
            agent_version: "0.1.0".into(),
            capabilities: vec!["exec".into()],
        }),
        Response::Ok,
        Response::Stdout {
            data: b"out\n".to_vec(),
        },
        Response::Stderr {
            data: vec![0xff, 0xfe],
        },
        Response::Exit(exit),
        Response::FileData {
            data: b"hello".to_vec(),
        },
        Response::Stat(FileStat {
            kind: FileKind::Symlink,
            size: 4,
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime_unix_ms: -5,
            link_target: Some("/x".into()),
        }),
        Response::Listing {
            entries: vec![DirEntry {
                name: "a".into(),
                kind: FileKind::Dir,
                size: 0,
            }],
        },
        Response::Value {
            value: json!({"x": [1, null, "s"]}),
        },
        Response::FunctionError(FunctionError {
            kind: "ValueError".into(),
            message: "bad".into(),
            traceback: Some("Traceback ...".into()),
        }),
        Response::HookResult(HookOutcome {
            exit: None,
            output_tail: String::new(),
        }),
        Response::HookResult(HookOutcome {
            exit: Some(exit),
            output_tail: "x".into(),
        }),
        Response::ServiceStarted {
            entrypoint: "main".into(),
            pid: 42,
        },
        Response::Error(AgentError {
            kind: ErrorKind::NotFound,
            message: "no /x".into(),
        }),
    ] {
        round_trip_guest(response);
    }
}

#[test]
fn wire_shape_matches_the_readme() {
    let exec = HostFrame {
        id: 3,
        request: Request::Exec(ExecRequest::new(["true"])),
    };
    assert_eq!(
        serde_json::to_value(&exec).unwrap(),
        json!({"id": 3, "request": {"type": "exec", "argv": ["true"], "env": {}, "cwd": null, "stdin": "", "timeout_ms": null}})
    );

    let out = GuestFrame::Reply {
        id: 3,
        response: Response::Stdout {
            data: b"hi\n".to_vec(),
        },
    };
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"frame": "reply", "id": 3, "response": {"type": "stdout", "data": "aGkK"}})
    );

    let hello = GuestFrame::Hello(Hello {
        protocol: 1,
        agent_version: "0.1.0".into(),
        capabilities: vec!["exec".into()],
    });
    assert_eq!(
        serde_json::to_value(&hello).unwrap(),
        json!({"frame": "hello", "protocol": 1, "agent_version": "0.1.0", "capabilities": ["exec"]})
    );

    let raised = GuestFrame::Reply {
        id: 4,
        response: Response::FunctionError(FunctionError {
            kind: "KeyError".into(),
            message: "'x'".into(),
            traceback: None,
        }),
    };
    assert_eq!(
        serde_json::to_value(&raised).unwrap(),
        json!({"frame": "reply", "id": 4, "response": {"type": "function_error", "kind": "KeyError", "message": "'x'", "traceback": null}})
    );
}

#[test]
fn optional_request_fields_may_be_omitted() {
    let frame: HostFrame =
        serde_json::from_value(json!({"id": 1, "request": {"type": "exec", "argv": ["ls"]}}))
            .unwrap();
    assert_eq!(frame.request, Request::Exec(ExecRequest::new(["ls"])));

    let frame: HostFrame = serde_json::from_value(
        json!({"id": 2, "request": {"type": "file_write", "path": "/f", "data": "eA=="}}),
    )
    .unwrap();
    assert_eq!(
        frame.request,
        Request::FileWrite {
            path: "/f".into(),
            data: b"x".to_vec(),
            mode: 0o644,
            append: false
        }
    );

    let frame: HostFrame =
        serde_json::from_value(json!({"id": 3, "request": {"type": "invoke"}})).unwrap();
    assert_eq!(
        frame.request,
        Request::Invoke {
            entrypoint: None,
            args: Default::default(),
            timeout_ms: None
        }
    );
}

#[test]
fn bad_base64_is_a_decode_error_naming_the_problem() {
    let err = serde_json::from_value::<HostFrame>(
        json!({"id": 1, "request": {"type": "file_write", "path": "/f", "data": "not base64!"}}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid base64"), "{err}");
}

#[test]
fn unknown_error_kinds_from_a_newer_agent_still_decode() {
    let frame: GuestFrame = serde_json::from_value(
        json!({"frame": "reply", "id": 1, "response": {"type": "error", "kind": "quota_exceeded", "message": "m"}}),
    )
    .unwrap();
    assert_eq!(
        frame,
        GuestFrame::Reply {
            id: 1,
            response: Response::Error(AgentError {
                kind: ErrorKind::Unknown,
                message: "m".into()
            })
        }
    );
}

#[test]
fn hook_phases_use_ir_names() {
    for phase in HookPhase::ALL {
        assert_eq!(serde_json::to_value(phase).unwrap(), json!(phase.as_str()));
    }
}

#[test]
fn only_output_chunks_are_not_final() {
    assert!(!Response::Stdout { data: vec![] }.is_final());
    assert!(!Response::Stderr { data: vec![] }.is_final());
    assert!(
        Response::Exit(ProcessExit {
            code: Some(0),
            signal: None,
            timed_out: false
        })
        .is_final()
    );
    assert!(Response::Pong.is_final());
}
