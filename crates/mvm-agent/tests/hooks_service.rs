//! Hooks and command services in a real dev-mode agent.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use mvm_proto::{ClientError, ErrorKind, HookPhase};
use serde_json::json;
use support::{DevAgent, wait_dead, write, write_launch};

#[test]
fn hooks_run_with_the_configured_env_in_the_app_dir() {
    let agent = DevAgent::start(|root| {
        write(
            root,
            "etc/mvm/hooks/before_start.sh",
            "set -eu\necho \"banner: $HELLO_BANNER\"\npwd\necho oops >&2\nexit 4\n",
        );
        write(root, "etc/mvm/hooks/after_start.sh", "set -eu\ntrue\n");
    });
    agent
        .client
        .configure(BTreeMap::from([("HELLO_BANNER".into(), "hi".into())]))
        .unwrap();

    let outcome = agent.client.run_hook(HookPhase::BeforeStart, None).unwrap();
    assert_eq!(outcome.exit.unwrap().code, Some(4));
    assert!(!outcome.success());
    let app = agent.root().join("app").canonicalize().unwrap();
    assert!(
        outcome.output_tail.contains("banner: hi\n"),
        "{}",
        outcome.output_tail
    );
    assert!(
        outcome
            .output_tail
            .contains(&format!("{}\n", app.display())),
        "{}",
        outcome.output_tail
    );
    assert!(
        outcome.output_tail.contains("oops"),
        "stderr belongs in the tail too: {}",
        outcome.output_tail
    );

    assert!(
        agent
            .client
            .run_hook(HookPhase::AfterStart, None)
            .unwrap()
            .success()
    );

    // No script for the phase: success, nothing ran.
    let outcome = agent.client.run_hook(HookPhase::BeforeStop, None).unwrap();
    assert_eq!(outcome.exit, None);
    assert!(outcome.success());
}

#[test]
fn a_hook_past_its_timeout_is_killed() {
    let agent = DevAgent::start(|root| write(root, "etc/mvm/hooks/before_stop.sh", "sleep 100\n"));
    let outcome = agent
        .client
        .run_hook(HookPhase::BeforeStop, Some(200))
        .unwrap();
    assert!(outcome.exit.unwrap().timed_out);
}

#[test]
fn the_primary_command_runs_as_a_restarted_service() {
    let agent = DevAgent::start(|root| {
        let pids = root.join("pids");
        let command = json!([
            "sh",
            "-c",
            format!(
                "echo $$ >> {} && echo \"service up $MODE\"; exec sleep 1000",
                pids.display()
            )
        ]);
        write_launch(
            root,
            json!([
                {"kind": "command", "name": "main", "command": command, "working_dir": "/", "primary": true},
                {"kind": "function", "name": "f", "language": "python", "module": "app", "function": "f", "format": "json", "working_dir": "/app", "primary": false},
            ]),
            "main",
        );
    });
    agent
        .client
        .configure(BTreeMap::from([("MODE".into(), "test".into())]))
        .unwrap();
    let (name, pid) = agent.client.start_service(None).unwrap();
    assert_eq!(name, "main");
    // Idempotent: a second start reports the running one.
    assert_eq!(
        agent.client.start_service(Some("main")).unwrap(),
        ("main".to_string(), pid)
    );

    // Killed from outside, it comes back with a new pid.
    unsafe_kill(pid);
    let pids = agent.root().join("pids");
    let restarted = loop {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        if text.lines().count() >= 2 {
            break text.lines().nth(1).unwrap().parse::<u32>().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_ne!(restarted, pid);

    let err = agent.client.start_service(Some("f")).unwrap_err();
    assert!(
        matches!(&err, ClientError::Agent { error, .. } if error.kind == ErrorKind::WrongEntrypointKind),
        "{err}"
    );

    // Shutdown takes the service down with the agent.
    agent.client.shutdown("test").unwrap();
    assert!(
        wait_dead(restarted),
        "service {restarted} outlived the agent"
    );
    assert!(Path::new(&pids).exists());
}

fn unsafe_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
