//! A real guest: the Debian cloud kernel, the agent initramfs from
//! mvm-guest, a Debian root disk and a scratch disk, reached over the
//! virtio-serial channel with the mvm-proto client.

mod common;

use std::time::Duration;

use mvm_guest::{Progress, ensure_assets};
use mvm_proto::{Client, ExecRequest};
use mvm_vmm::{Backend, Disk, backend, connect_agent};

/// The QEMU socket exists moments after launch; the hello takes a boot.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn agent_boots_answers_and_powers_off() {
    let cache = common::cache_dir();
    let assets = ensure_assets(&cache, Progress::Hidden).unwrap();
    let root = common::rootfs::test_rootfs(&cache);
    let _lock = common::vm_lock(&cache);
    let dir = tempfile::tempdir().unwrap();
    let root_disk = Disk {
        path: root,
        read_only: true,
    };
    let spec = common::spec(dir.path(), &assets.kernel, &assets.initrd, vec![root_disk]);

    let watch = common::ConsoleWatch::start(&spec, &["mvm-agent: "]);
    let mut vm = backend(Backend::default()).launch(&spec).unwrap();
    let stream = connect_agent(vm.as_mut(), &spec, SOCKET_TIMEOUT).unwrap();
    let client = Client::connect(stream, common::BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}; console:\n{}", mvm_vmm::log_tail(&spec.console_log)));
    let timings = watch.finish();
    assert_eq!(client.hello().protocol, mvm_proto::PROTOCOL_VERSION);

    client.ping(REQUEST_TIMEOUT).unwrap();

    // Network `none` attaches no NIC: loopback is the only interface.
    let net = client
        .exec_output(ExecRequest::new(["ls", "/sys/class/net"]))
        .unwrap();
    assert!(net.exit.success(), "{net:?}");
    assert_eq!(
        String::from_utf8_lossy(&net.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["lo"]
    );

    // The root is the Debian image, writable through the scratch overlay.
    let python = client
        .exec_output(ExecRequest::new([
            "python3",
            "-c",
            "import sys; print(sys.version_info[0])",
        ]))
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&python.stdout).trim(),
        "3",
        "{python:?}"
    );
    client
        .write_file("/tmp/mvm-probe", b"written".to_vec(), 0o644)
        .unwrap();
    assert_eq!(client.read_file("/tmp/mvm-probe").unwrap(), b"written");

    // The initramfs payload reached the new root: guest code can import the SDK.
    let mut import = ExecRequest::new(["python3", "-c", "import mvm; print(mvm.__file__)"]);
    import
        .env
        .insert("PYTHONPATH".into(), "/usr/lib/mvm/python".into());
    let import = client.exec_output(import).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&import.stdout).trim(),
        "/usr/lib/mvm/python/mvm/__init__.py",
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    for runner in mvm_guest::runner_names() {
        client.stat(&format!("/run/mvm/runners/{runner}")).unwrap();
    }

    client.shutdown("test done").unwrap();
    let status = common::wait_exit(vm.as_mut(), &spec, common::BOOT_TIMEOUT);
    assert!(
        status.success(),
        "QEMU exited with {status}: {}",
        mvm_vmm::log_tail(&spec.vmm_log)
    );
    let console = std::fs::read_to_string(&spec.console_log).unwrap();
    assert!(console.contains("mvm-agent: powering off"), "{console}");

    println!(
        "agent boot ({:?}): console output after {:.2} s, agent's first line after {:.2} s, hello after {:.2} s",
        spec.accel,
        timings.first_output.as_secs_f64(),
        timings.markers[0].as_secs_f64(),
        timings.done.as_secs_f64(),
    );
}
