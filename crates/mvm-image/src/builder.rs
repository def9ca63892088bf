//! The builder microVM: dependency installation and `before_build` run
//! inside a guest booted on the image being built, never on the host.
//!
//! The tree is sealed as a read-only lower disk; the agent mounts it under
//! an overlay whose upper layer is a scratch disk, exactly as at run time.
//! After the guest powers off, the upper layer is read back as data by a
//! memory-safe ext4 reader (the guest-written file system is never mounted
//! by the host kernel nor parsed by C) and merged into the tree without
//! following any link (`crate::upper`), and the tree is sealed for real.
//!
//! Network: none, unless dependencies are declared. Then the guest gets a
//! restricted user network whose only reachable address is the egress
//! gate (mvm-egress), which relays HTTPS to the install's concrete grants
//! (the registries and the hosts the lockfile names). `before_build`
//! hooks in the same boot see the same gate.
//!
//! Limits: opaque directories are not carried over, so a directory the
//! hook deleted and re-created keeps the base's files too.

use std::path::Path;
use std::time::Duration;

use mvm_proto::{Client, ExecRequest, HookPhase};
use mvm_vmm::{Backend, ExecForward, GuestBoot, GuestNetwork, GuestVm, MachineConfig};

use crate::buildlog::BuildLog;
use crate::deps::{self, Install, Package};
use crate::error::ImageError;
use crate::seal;
use crate::tree::Tree;
use crate::upper;

/// Upper layer size; sparse, so only what the hook writes uses host disk.
const SCRATCH_MIB: u64 = 4096;
const MEMORY_MIB: u32 = 1024;
/// A TCG guest (no KVM) takes tens of seconds to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// An upper bound so a hung hook or install cannot hang the build forever.
const HOOK_TIMEOUT: Duration = Duration::from_secs(3600);
const INVENTORY_TIMEOUT: Duration = Duration::from_secs(120);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Output of one install command kept for the build log (its end, where
/// errors are); the guest may print without end.
const MAX_OUTPUT_BYTES: usize = 4 << 20;
/// The package listing is parsed whole; real ones are kilobytes.
const MAX_INVENTORY_BYTES: usize = 64 << 20;

pub struct Guest {
    pub assets: mvm_guest::GuestAssets,
}

/// What one builder boot does.
pub struct Job<'a> {
    /// Dependency installation and the program that serves the egress gate
    /// (`mvmctl`, run by QEMU per connection as `PROGRAM __egress-proxy`).
    pub install: Option<(&'a Install, &'a Path)>,
    pub before_build: bool,
    /// The build's epoch: the builder's disk is sealed from the same tree,
    /// and the Python caches restamped there must agree with the final seal.
    pub epoch: u32,
}

/// What the builder installed, for image.lock.
#[derive(Debug, Default)]
pub struct Outcome {
    pub packages: Vec<Package>,
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

    /// Runs `job` in a microVM booted on `tree` and merges what it wrote
    /// back into `tree`. `work` holds the disks, sockets and logs.
    pub fn run(
        &self,
        tree: &Path,
        work: &Path,
        seed: &str,
        job: &Job<'_>,
        log: &mut BuildLog,
    ) -> Result<Outcome, ImageError> {
        let lower = work.join("builder-root.ext4");
        let scratch = work.join("builder-scratch.ext4");
        seal::seal(tree, &lower, seed, job.epoch, log)?;
        mvm_vmm::create_scratch_disk(&scratch, SCRATCH_MIB).map_err(|e| ImageError::Builder {
            detail: format!("creating the scratch disk: {e}"),
        })?;
        let egress_log = work.join("egress.log");
        let network = match job.install {
            None => GuestNetwork::None,
            Some((install, program)) => {
                let mut argv = vec![
                    program.to_string_lossy().into_owned(),
                    "__egress-proxy".to_string(),
                    "--log".to_string(),
                    egress_log.to_string_lossy().into_owned(),
                ];
                // One slot directory per builder boot: the cap is per microVM.
                argv.push("--slots".into());
                argv.push(work.join("egress-slots").to_string_lossy().into_owned());
                for grant in install.grants.iter().chain(&install.allow_private) {
                    argv.push("--grant".into());
                    argv.push(grant.to_string());
                }
                for grant in &install.allow_private {
                    argv.push("--allow-private".into());
                    argv.push(grant.to_string());
                }
                let list = |grants: &[mvm_egress::Grant]| {
                    grants
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                log.note(&format!("builder egress grants: {}", list(&install.grants)));
                if !install.allow_private.is_empty() {
                    log.note(&format!(
                        "builder egress: private destinations the operator allowed (--allow-private-egress): {}",
                        list(&install.allow_private)
                    ));
                }
                GuestNetwork::User {
                    address: mvm_egress::GUEST_CIDR.to_owned(),
                    forwards: vec![],
                    restrict: true,
                    exec_forwards: vec![ExecForward {
                        guest_addr: mvm_egress::GATE_ADDR,
                        guest_port: mvm_egress::GATE_PORT,
                        argv,
                    }],
                }
            }
        };
        let starting_failed = |e: &dyn std::fmt::Display| ImageError::Builder {
            detail: format!("starting QEMU: {e}"),
        };
        let spec = GuestVm {
            boot: GuestBoot {
                kernel: self.assets.kernel.clone(),
                initrd: self.assets.initrd.clone(),
                cmdline: self.assets.cmdline_base.clone(),
            },
            machine: MachineConfig {
                vcpus: 2,
                memory_mib: MEMORY_MIB,
            },
            root_disk: lower.clone(),
            scratch_disk: scratch.clone(),
            agent_socket: work.join("agent.sock"),
            console_log: work.join("console.log"),
            vmm_log: work.join("qemu.log"),
            broker_socket: None,
            control_socket: None,
            network,
            accel: mvm_vmm::probe().chosen,
        }
        .into_spec()
        .map_err(|e| starting_failed(&e))?;
        log.note(&format!("booting the builder microVM ({:?})", spec.accel));
        let mut vm = mvm_vmm::backend(Backend::default())
            .launch(&spec)
            .map_err(|e| starting_failed(&e))?;
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
            let outcome = in_guest(&client, job, log);
            // Power-off syncs and unmounts the overlay, so the upper layer is complete.
            client
                .shutdown("image build step done")
                .map_err(|e| ImageError::Builder {
                    detail: format!("shutting the builder down: {e}"),
                })?;
            outcome
        })();
        let stopped = wait_or_kill(vm.as_mut());
        append_console(log, &spec.console_log);
        if let Some(text) = log_tail_bytes(&egress_log, MAX_OUTPUT_BYTES as u64) {
            log.note(&format!("egress gate:\n{text}"));
        }
        let outcome = outcome?;
        stopped?;
        merge_upper(&scratch, tree, log)?;
        Ok(outcome)
    }
}

/// The builder's steps, over the agent channel.
fn in_guest(client: &Client, job: &Job<'_>, log: &mut BuildLog) -> Result<Outcome, ImageError> {
    let failed = |what: &str| {
        let what = what.to_string();
        move |e: mvm_proto::ClientError| ImageError::Builder {
            detail: format!("{what}: {e}"),
        }
    };
    // No RTC in a microVM: without the host's time, TLS certificates are
    // "not yet valid".
    let entropy: [u8; 32] = rand::random();
    client
        .sync_clock(entropy.to_vec())
        .map_err(failed("setting the guest clock"))?;

    let mut outcome = Outcome::default();
    if let Some((install, _)) = job.install {
        let ca = host_ca_bundle()?;
        client
            .write_file(deps::GUEST_CA_FILE, ca, 0o644)
            .map_err(failed("copying the host CA bundle"))?;
        let env = install.env(&mvm_egress::proxy_url());
        for argv in install.commands() {
            let shown = argv.join(" ");
            let (out, dropped) = client
                .exec(in_app(argv, &env, HOOK_TIMEOUT))
                .and_then(|stream| stream.collect_tail(MAX_OUTPUT_BYTES))
                .map_err(failed(&format!("running `{shown}`")))?;
            let dropped = if dropped > 0 {
                format!("[{dropped} earlier bytes of output not kept]\n")
            } else {
                String::new()
            };
            log.note(&format!(
                "$ {shown}\n{dropped}{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
            if !out.exit.success() {
                return Err(log.failed(
                    &format!("dependency installation (`{shown}`) in the builder microVM"),
                    &out.exit.to_string(),
                ));
            }
        }
        if let Some(argv) = install.inventory() {
            let (out, dropped) = client
                .exec(in_app(argv, &env, INVENTORY_TIMEOUT))
                .and_then(|stream| stream.collect_tail(MAX_INVENTORY_BYTES))
                .map_err(failed("listing the installed packages"))?;
            if dropped > 0 {
                return Err(ImageError::Builder {
                    detail: format!(
                        "the installed-package listing is over {MAX_INVENTORY_BYTES} bytes; refusing it"
                    ),
                });
            }
            if !out.exit.success() {
                return Err(ImageError::Builder {
                    detail: format!(
                        "listing the installed packages failed ({}): {}",
                        out.exit,
                        String::from_utf8_lossy(&out.stderr)
                    ),
                });
            }
            outcome.packages = deps::parse_inventory(&out.stdout)
                .map_err(|detail| ImageError::Builder { detail })?;
        }
    }
    if job.before_build {
        if let Some((install, _)) = job.install {
            // The hooks share the install's gate, proxy and CA settings.
            client
                .configure(install.env(&mvm_egress::proxy_url()))
                .map_err(failed("configuring the hook environment"))?;
        }
        let hook = client
            .run_hook(
                HookPhase::BeforeBuild,
                Some(HOOK_TIMEOUT.as_millis() as u64),
            )
            .map_err(failed("running before_build"))?;
        log.note(&format!("before_build output:\n{}", hook.output_tail));
        if !hook.success() {
            let status = hook.exit.map(|e| e.to_string()).unwrap_or_default();
            return Err(log.failed("before_build hook in the builder microVM", &status));
        }
    }
    Ok(outcome)
}

/// `argv` run in the app directory with `env`, killed after `timeout`.
fn in_app(
    argv: Vec<String>,
    env: &std::collections::BTreeMap<String, String>,
    timeout: Duration,
) -> ExecRequest {
    let mut request = ExecRequest::new(argv);
    request.env = env.clone();
    request.cwd = Some(deps::APP_DIR.into());
    request.timeout_ms = Some(timeout.as_millis() as u64);
    request
}

/// The host's CA bundle (`SSL_CERT_FILE`, else Debian's).
fn host_ca_bundle() -> Result<Vec<u8>, ImageError> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    std::fs::read(&path).map_err(|e| ImageError::Builder {
        detail: format!(
            "reading the host CA bundle {} for the dependency install: {e}; install ca-certificates or set SSL_CERT_FILE",
            path.display()
        ),
    })
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

/// Applies the overlay upper layer (`/upper` on the scratch disk) to
/// `tree`, reading the disk as data (see [`crate::upper`]).
fn merge_upper(scratch: &Path, tree: &Path, log: &mut BuildLog) -> Result<(), ImageError> {
    let tree = Tree::open(tree)?;
    let merged = upper::merge(scratch, &tree)?;
    log.note(&format!(
        "merged the builder's writes: {} files, {} directories, {} links, {} removed",
        merged.files, merged.dirs, merged.links, merged.removed
    ));
    if !merged.skipped.is_empty() {
        log.note(&format!(
            "left out special files the builder wrote: {}",
            merged.skipped.join(", ")
        ));
    }
    Ok(())
}

/// The last `max` bytes of a log the guest's traffic grew, as text.
fn log_tail_bytes(path: &Path, max: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut prefix = String::new();
    if len > max {
        file.seek(SeekFrom::Start(len - max)).ok()?;
        prefix = format!("[{} earlier bytes not kept]\n", len - max);
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(prefix + &String::from_utf8_lossy(&bytes))
}
