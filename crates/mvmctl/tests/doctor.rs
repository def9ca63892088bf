//! `mvmctl doctor` on this host: the test machine has what the main job
//! needs (scripts/setup.sh installs it), so doctor must say so, and it must
//! report a missing required tool as a failure with a hint.

use std::process::Command;

fn doctor(path: Option<&std::path::Path>) -> (Option<i32>, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvmctl"));
    cmd.args(["doctor", "--json"]);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON"),
    )
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

#[test]
fn reports_host_tools_and_store_and_passes_here() {
    let (code, report) = doctor(None);
    let titles: Vec<&str> = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Host", "Tools", "Store"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    let accel = check(&report, "accelerator")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        accel.starts_with("kvm") || accel.starts_with("tcg"),
        "{accel}"
    );
    assert!(
        check(&report, "qemu")["detail"]
            .as_str()
            .unwrap()
            .contains("QEMU emulator version")
    );
}

#[test]
fn a_missing_required_tool_fails_with_a_hint() {
    let empty = tempfile::tempdir().unwrap();
    let (code, report) = doctor(Some(empty.path()));
    assert_eq!(code, Some(1), "{report:#}");
    let mmdebstrap = check(&report, "mmdebstrap");
    assert_eq!(mmdebstrap["ok"], false);
    assert!(
        mmdebstrap["hint"]
            .as_str()
            .unwrap()
            .contains("apt-get install mmdebstrap")
    );
    assert_eq!(check(&report, "ts runner")["ok"], false);
}
