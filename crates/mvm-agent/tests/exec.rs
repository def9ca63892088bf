//! Exec against a real dev-mode agent: streaming, exit codes, stdin, env,
//! timeouts killing the whole process tree.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mvm_proto::{ClientError, ErrorKind, ExecEvent, ExecRequest, Request};
use support::{DevAgent, wait_dead};

fn sh(script: &str) -> ExecRequest {
    ExecRequest::new(["sh", "-c", script])
}

#[test]
fn ping_and_hello() {
    let agent = DevAgent::start(|_| {});
    agent.client.ping(Duration::from_secs(60)).unwrap();
    let hello = agent.client.hello();
    assert_eq!(hello.protocol, mvm_proto::PROTOCOL_VERSION);
    assert!(
        hello.capabilities.iter().any(|c| c == "invoke"),
        "{hello:?}"
    );
    assert!(
        !hello.capabilities.iter().any(|c| c == "resume"),
        "dev mode cannot resume: {hello:?}"
    );
}

#[test]
fn output_exit_code_and_signal() {
    let agent = DevAgent::start(|_| {});
    let out = agent
        .client
        .exec_output(sh("echo out; echo err >&2; exit 3"))
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(
        (out.exit.code, out.exit.signal, out.exit.timed_out),
        (Some(3), None, false)
    );

    let out = agent.client.exec_output(sh("kill -9 $$")).unwrap();
    assert_eq!((out.exit.code, out.exit.signal), (None, Some(9)));
}

#[test]
fn output_streams_while_the_command_runs() {
    let agent = DevAgent::start(|_| {});
    let flag = agent.dir.path().join("flag");
    let script = format!(
        "echo first; while [ ! -e {} ]; do sleep 0.01; done; echo second",
        flag.display()
    );
    let mut stream = agent.client.exec(sh(&script)).unwrap();
    // The command cannot finish until the flag exists, so this chunk can
    // only have arrived by streaming. Meanwhile other requests still work.
    assert_eq!(
        stream.next_event().unwrap(),
        ExecEvent::Stdout(b"first\n".to_vec())
    );
    agent.client.ping(Duration::from_secs(60)).unwrap();
    agent
        .client
        .write_file(flag.to_str().unwrap(), vec![], 0o644)
        .unwrap();
    let rest = stream.collect().unwrap();
    assert_eq!(rest.stdout, b"second\n");
    assert!(rest.exit.success());
}

/// After a quiesce the agent sends nothing, not even a streaming
/// command's output, until the host's next request; then all of it.
#[test]
fn quiesce_holds_every_frame_until_the_next_request() {
    let agent = DevAgent::start(|_| {});
    assert!(
        agent
            .client
            .hello()
            .capabilities
            .iter()
            .any(|c| c == "quiesce"),
        "{:?}",
        agent.client.hello()
    );
    let flag = agent.dir.path().join("flag");
    let script = format!(
        "echo first; while [ ! -e {} ]; do sleep 0.01; done; echo second",
        flag.display()
    );
    let mut stream = agent.client.exec(sh(&script)).unwrap();
    assert_eq!(
        stream.next_event().unwrap(),
        ExecEvent::Stdout(b"first\n".to_vec())
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        loop {
            let event = stream.next_event();
            let last = !matches!(event, Ok(ExecEvent::Stdout(_) | ExecEvent::Stderr(_)));
            let _ = tx.send(event);
            if last {
                break;
            }
        }
    });
    agent.client.quiesce(Duration::from_secs(60)).unwrap();
    // Unblock the command straight on the host's disk (a dev agent's
    // files are ours): a file request would itself release the hold.
    std::fs::write(&flag, b"").unwrap();
    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "output flowed during the quiesce"
    );
    agent.client.ping(Duration::from_secs(60)).unwrap();
    let mut stdout = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap() {
            ExecEvent::Stdout(d) => stdout.extend(d),
            ExecEvent::Stderr(_) => {}
            ExecEvent::Exit(exit) => {
                assert!(exit.success(), "{exit:?}");
                break;
            }
        }
    }
    assert_eq!(stdout, b"second\n");
}

#[test]
fn stdin_env_and_cwd() {
    let agent = DevAgent::start(|_| {});
    let mut cat = ExecRequest::new(["cat"]);
    cat.stdin = (0..=255u8).collect();
    assert_eq!(
        agent.client.exec_output(cat).unwrap().stdout,
        (0..=255u8).collect::<Vec<_>>()
    );

    agent
        .client
        .configure(BTreeMap::from([
            ("A".into(), "configured".into()),
            ("B".into(), "overridden".into()),
        ]))
        .unwrap();
    let mut env = sh("echo $A $B $C; pwd");
    env.env = BTreeMap::from([
        ("B".into(), "request".into()),
        ("C".into(), "only-here".into()),
    ]);
    env.cwd = Some(agent.dir.path().to_string_lossy().into_owned());
    let out = agent.client.exec_output(env).unwrap();
    let expected = format!(
        "configured request only-here\n{}\n",
        agent.dir.path().canonicalize().unwrap().display()
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    // The default working directory is the app directory.
    let out = agent.client.exec_output(ExecRequest::new(["pwd"])).unwrap();
    assert_eq!(
        Path::new(String::from_utf8(out.stdout).unwrap().trim()),
        agent.root().join("app").canonicalize().unwrap()
    );
}

#[test]
fn timeout_kills_the_whole_process_tree() {
    let agent = DevAgent::start(|_| {});
    let mut request = sh("sleep 100 & echo $! $$; sleep 100");
    request.timeout_ms = Some(300);
    let out = agent.client.exec_output(request).unwrap();
    assert!(out.exit.timed_out, "{:?}", out.exit);
    assert_eq!(out.exit.signal, Some(libc_sigkill()));
    let pids: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(wait_dead(pid), "process {pid} survived the timeout");
    }
}

#[test]
fn background_children_do_not_outlive_their_command() {
    let agent = DevAgent::start(|_| {});
    let out = agent
        .client
        .exec_output(sh("sleep 100 >/dev/null 2>&1 & echo $!"))
        .unwrap();
    assert!(out.exit.success());
    let pid: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_dead(pid), "background process {pid} was left running");
}

#[test]
fn unknown_program_and_empty_argv_are_errors() {
    let agent = DevAgent::start(|_| {});
    let err = agent
        .client
        .exec_output(ExecRequest::new(["no-such-program-mvm"]))
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Agent { error, .. } if error.kind == ErrorKind::SpawnFailed && error.message.contains("no-such-program-mvm")),
        "{err}"
    );
    let err = agent
        .client
        .call(Request::Exec(ExecRequest::new(Vec::<String>::new())))
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Agent { error, .. } if error.kind == ErrorKind::InvalidRequest),
        "{err}"
    );
}

#[test]
fn shutdown_stops_the_dev_agent() {
    let mut agent = DevAgent::start(|_| {});
    agent.client.shutdown("test").unwrap();
    let status = agent.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

fn libc_sigkill() -> i32 {
    9
}
