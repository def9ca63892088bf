//! The builder microVM: `before_build` runs inside a guest booted on the
//! image being built, never on the host.
//!
//! The tree is sealed as a read-only lower disk; the agent mounts it under
//! an overlay whose upper layer is a scratch disk, exactly as at run time.
//! After the guest powers off, the upper layer is read back with debugfs (a
//! userspace reader: the guest-written file system is never mounted by the
//! host kernel) and merged into the tree, which is then sealed for real.
//!
//! Limits: overlay whiteouts and opaque directories are not carried over
//! (debugfs skips device nodes), so files the hook deletes from the base
//! stay; the guest has no network (the agent does not configure one yet).

use std::path::Path;
use std::time::Duration;

use mvm_proto::{Client, HookPhase};
use mvm_vmm::{Disk, Network, Qemu, VmSpec, Vmm};

use crate::buildlog::BuildLog;
use crate::error::ImageError;
use crate::seal;

/// Upper layer size; sparse, so only what the hook writes uses host disk.
const SCRATCH_MIB: u64 = 4096;
const MEMORY_MIB: u32 = 1024;
/// A TCG guest (no KVM) takes tens of seconds to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// An upper bound so a hung hook cannot hang the build forever.
const HOOK_TIMEOUT: Duration = Duration::from_secs(3600);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Guest paths that are run-time state, not image content.
const NOT_CONTENT: &[&str] = &["run", "tmp", "proc", "sys", "dev", "mnt/mvm"];

pub struct Guest {
    pub assets: mvm_guest::GuestAssets,
}

impl Guest {
    pub fn prepare(cache_dir: &Path) -> Result<Guest, ImageError> {
        let assets =
            mvm_guest::ensure_assets(cache_dir, mvm_guest::Progress::Hidden).map_err(|e| {
                ImageError::Builder {
                    detail: format!("preparing the guest kernel and agent: {e}"),
                }
            })?;
        Ok(Guest { assets })
    }

    /// How image.lock names the kernel.
    pub fn kernel(&self) -> String {
        let a = &self.assets;
        format!(
            "{} {} ({})",
            a.kernel_package, a.kernel_package_version, a.kernel_release
        )
    }

    /// Runs `before_build` in a microVM booted on `tree` and merges what it
    /// wrote back into `tree`. `work` holds the disks, sockets and logs.
    pub fn run_before_build(
        &self,
        tree: &Path,
        work: &Path,
        seed: &str,
        log: &mut BuildLog,
    ) -> Result<(), ImageError> {
        let lower = work.join("builder-root.ext4");
        let scratch = work.join("builder-scratch.ext4");
        seal::seal(tree, &lower, seed, log)?;
        mvm_vmm::create_scratch_disk(&scratch, SCRATCH_MIB).map_err(|e| ImageError::Builder {
            detail: format!("creating the scratch disk: {e}"),
        })?;
        let spec = VmSpec {
            kernel: self.assets.kernel.clone(),
            initrd: self.assets.initrd.clone(),
            cmdline: self.assets.cmdline_base.clone(),
            vcpus: 2,
            memory_mib: MEMORY_MIB,
            disks: vec![
                Disk {
                    path: lower.clone(),
                    read_only: true,
                },
                Disk {
                    path: scratch.clone(),
                    read_only: false,
                },
            ],
            agent_socket: work.join("agent.sock"),
            console_log: work.join("console.log"),
            vmm_log: work.join("qemu.log"),
            control_socket: None,
            network: Network::None,
            accel: mvm_vmm::probe().chosen,
        };
        log.note(&format!("booting the builder microVM ({:?})", spec.accel));
        let mut vm = Qemu::default()
            .launch(&spec)
            .map_err(|e| ImageError::Builder {
                detail: format!("starting QEMU: {e}"),
            })?;
        let outcome = (|| {
            let stream = mvm_vmm::connect_agent(vm.as_mut(), &spec, BOOT_TIMEOUT).map_err(|e| {
                ImageError::Builder {
                    detail: e.to_string(),
                }
            })?;
            let client =
                Client::connect(stream, BOOT_TIMEOUT).map_err(|e| ImageError::Builder {
                    detail: format!("agent handshake: {e}"),
                })?;
            let hook = client
                .run_hook(
                    HookPhase::BeforeBuild,
                    Some(HOOK_TIMEOUT.as_millis() as u64),
                )
                .map_err(|e| ImageError::Builder {
                    detail: format!("running before_build: {e}"),
                })?;
            log.note(&format!("before_build output:\n{}", hook.output_tail));
            let ok = hook.success();
            // Power-off syncs and unmounts the overlay, so the upper layer is complete.
            client
                .shutdown("image build step done")
                .map_err(|e| ImageError::Builder {
                    detail: format!("shutting the builder down: {e}"),
                })?;
            if !ok {
                let status = hook.exit.map(|e| e.to_string()).unwrap_or_default();
                return Err(log.failed("before_build hook in the builder microVM", &status));
            }
            Ok(())
        })();
        let stopped = wait_or_kill(vm.as_mut());
        append_console(log, &spec.console_log);
        outcome?;
        stopped?;
        merge_upper(&scratch, tree, work, log)
    }
}

fn wait_or_kill(vm: &mut dyn mvm_vmm::VmProcess) -> Result<(), ImageError> {
    let deadline = std::time::Instant::now() + SHUTDOWN_TIMEOUT;
    while std::time::Instant::now() < deadline {
        match vm.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                return Err(ImageError::Builder {
                    detail: format!("waiting for QEMU: {e}"),
                });
            }
        }
    }
    let _ = vm.kill();
    Err(ImageError::Builder {
        detail: "the builder microVM did not power off; it was killed and its writes discarded"
            .into(),
    })
}

fn append_console(log: &mut BuildLog, console: &Path) {
    if let Ok(text) = std::fs::read(console) {
        log.note(&format!(
            "builder console:\n{}",
            String::from_utf8_lossy(&text)
        ));
    }
}

/// Copies the overlay upper layer (`/upper` on the scratch disk) over `tree`.
fn merge_upper(
    scratch: &Path,
    tree: &Path,
    work: &Path,
    log: &mut BuildLog,
) -> Result<(), ImageError> {
    let out = work.join("upper-dump");
    std::fs::create_dir_all(&out).map_err(ImageError::io(&out))?;
    let mut dump = std::process::Command::new("debugfs");
    dump.arg("-R")
        .arg(format!("rdump /upper {}", out.display()))
        .arg(scratch);
    log.run(
        "reading the builder's writes (debugfs rdump)",
        "debugfs",
        "install e2fsprogs",
        &mut dump,
    )?;
    let upper = out.join("upper");
    if !upper.is_dir() {
        return Err(ImageError::Builder {
            detail: "the scratch disk has no overlay upper layer (/upper)".into(),
        });
    }
    for state in NOT_CONTENT {
        let p = upper.join(state);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(ImageError::io(&p))?;
        }
    }
    let mut copy = std::process::Command::new("cp");
    copy.args(["-a", "-T"]).arg(&upper).arg(tree);
    log.run(
        "merging the builder's writes into the image",
        "cp",
        "the host needs GNU coreutils",
        &mut copy,
    )
}
