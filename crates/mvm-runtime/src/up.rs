//! `mvmctl up`: claim the name, write the record, start the supervisor and
//! wait for it to report ready or failed.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::admission::AdmissionRequest;
use crate::control::UpReport;
use crate::error::RuntimeError;
use crate::home::{InstanceDir, instances_root};
use crate::launch::{self, Entrypoint, EnvValue, Launch};
use crate::logs;
use crate::name::InstanceName;
use crate::persist::{GuestConfig, NetworkConfig, Persisted, VmConfig};
use crate::secrets;
use crate::state::{AuditInfo, ImageRef, InstanceState, Observed, Status, Timings, now_unix_ms};

/// Default for `--timeout-ready`: a TCG cold boot takes 6–10 s here, so
/// this leaves room for a busy machine and for slow readiness probes.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of console log shown when start-up fails.
pub const FAILURE_LOG_LINES: usize = 40;

/// How to start a supervisor: `program args... NAME`. For mvmctl this is
/// its own executable with `__supervise`.
#[derive(Debug, Clone)]
pub struct SupervisorCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl SupervisorCommand {
    /// The running executable with `__supervise`: what `mvmctl up` uses.
    pub fn current_exe() -> Result<SupervisorCommand, RuntimeError> {
        let program = std::env::current_exe().map_err(|source| RuntimeError::Io {
            what: "finding the mvmctl executable".into(),
            source,
        })?;
        Ok(SupervisorCommand {
            program,
            args: vec!["__supervise".into()],
        })
    }
}

/// The kernel, initrd and accelerator every instance boots with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootAssets {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub accel: mvm_vmm::Accel,
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub name: Option<InstanceName>,
    pub ready_timeout: Duration,
    pub supervisor: SupervisorCommand,
    /// Admission against a policy (and plan); `None` admits without
    /// checks or audit, for callers that built the image themselves
    /// (tests, benchmarks). `mvmctl up` always passes one.
    pub admission: Option<AdmissionRequest>,
    /// The operator's network decisions. The egress gate is served by
    /// `supervisor.program` too (`mvmctl __egress-proxy`).
    pub network: crate::network::NetworkOptions,
    /// The operator's choices for mediated requests (CA bundle, search).
    pub broker: crate::broker::BrokerOptions,
    /// Restore the image's template snapshot when there is a valid one
    /// (and save one when there is not), or always boot.
    pub start: StartChoice,
    /// A time limit the supervisor enforces (killing or pausing it).
    pub lease: Option<crate::state::Lease>,
}

/// How `up` starts the guest (docs/snapshots.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartChoice {
    /// Restore the template snapshot if one fits, else boot and save one.
    #[default]
    Auto,
    /// `up --cold`: boot, and leave templates alone.
    Cold,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UpOutcome {
    pub name: String,
    pub image_id: String,
    pub timings: Timings,
    /// Guest ports reachable on the host.
    pub ports: Vec<crate::network::Published>,
    /// What the operator should know about this instance (e.g. host networking).
    pub warnings: Vec<String>,
    /// `boot`, `template`, `resume`, `snapshot TAG`, or why a template
    /// could not be used.
    pub started_by: Option<String>,
}

/// Starts an instance of `image` and returns once it is ready. On failure
/// nothing is left running and the instance directory is gone.
pub fn up_image(
    home: &Path,
    image: ImageRef,
    assets: &BootAssets,
    opts: &UpOptions,
) -> Result<UpOutcome, RuntimeError> {
    // Until the instance's record names the image, a prune must wait
    // (and one that ran between the caller's lookup and now took it).
    let _using = crate::store::using_images(home, &image)?;
    crate::store::check_boot_files(&assets.kernel, &assets.initrd)?;
    let (launch, launch_sha256) = launch::load_with_digest(&image.launch_json)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => InstanceName::parse(&image.name)?,
    };
    // Before anything is claimed or booted: every secret the workload
    // names must be in the store.
    crate::broker::check_store(home, &crate::broker::referenced(&launch, &opts.broker))?;
    let dir = claim(home, &name)?;
    // Admission after the claim, so a plan's nonce is not spent on a name
    // that was taken.
    let audit = match admit_claimed(
        home,
        &dir,
        opts.admission.as_ref(),
        &launch,
        &launch_sha256,
        &image,
        assets,
    ) {
        Ok(audit) => audit,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir.dir);
            return Err(e);
        }
    };
    let mut state = initial_state(&dir, image, &launch, assets, opts.ready_timeout);
    // Gate processes run with QEMU's working directory: absolute paths.
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let abs_home = absolute(home.to_path_buf());
    let audit_ctx = audit.as_ref().map(|_| (name.as_str(), abs_home.as_path()));
    let egress_log = absolute(dir.egress_log());
    let slots = absolute(dir.dir.join("egress-slots"));
    let planned = crate::network::plan(
        &launch,
        &opts.network,
        &crate::network::GateContext {
            program: &opts.supervisor.program,
            egress_log: &egress_log,
            slots_dir: &slots,
            audit: audit_ctx,
        },
    );
    let planned = match planned {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir.dir);
            return Err(e);
        }
    };
    for (k, v) in planned.env {
        // A declaration that sets its own proxy variables keeps them.
        state.persist.guest.env.entry(k).or_insert(v);
    }
    if planned.config != crate::network::NetworkConfig::None {
        // Tells the guest's PID 1 to lay out the workload's network from
        // launch.json (the image builder's VM, which also has one, gets
        // only its gate).
        state.persist.vm.cmdline.push_str(" mvm.net=workload");
    }
    state.persist.vm.network = planned.config;
    if let Some(pem) = planned.host_ca {
        // A copy in the instance directory: what the guest gets is fixed at
        // `up`, whatever later happens to the host's file.
        let path = absolute(dir.dir.join("host-ca.pem"));
        let written = crate::private::create_file(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &pem));
        if let Err(source) = written {
            let _ = std::fs::remove_dir_all(&dir.dir);
            return Err(RuntimeError::Io {
                what: format!("writing {}", path.display()),
                source,
            });
        }
        state.persist.guest.host_ca = Some(path);
    }
    let tokens: std::collections::BTreeMap<String, String> = state
        .persist
        .guest
        .secret_tokens
        .keys()
        .filter_map(|var| Some((var.clone(), state.persist.guest.env.get(var)?.clone())))
        .collect();
    let broker =
        crate::broker::plan(&launch, &tokens, &opts.network, &opts.broker).and_then(|mut b| {
            if let Some(from) = &opts.broker.ca_bundle {
                let to = absolute(dir.dir.join("broker-ca.pem"));
                crate::broker::copy_ca_bundle(from, &to)?;
                b.ca_bundle = Some(to);
            }
            Ok(b)
        });
    match broker {
        Ok(b) => state.persist.broker = b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir.dir);
            return Err(e);
        }
    }
    let mut warnings = planned.warnings;
    state.audit = audit;
    state.lease = opts.lease;
    if opts.start == StartChoice::Auto {
        match crate::snapshot::bindings(&state.persist.vm, &state.image) {
            Ok(bindings) => {
                let template = crate::snapshot::template_slot(&state.image, bindings);
                state.start = if template.dir().is_dir() {
                    crate::state::Start::Template { template }
                } else {
                    crate::state::Start::BootAndCapture { template }
                };
            }
            Err(e) => warnings.push(format!("booting without a template snapshot: {e}")),
        }
    }
    launch_supervisor(home, &dir, state, &opts.supervisor, warnings, Lost::Down)
}

/// What to do when the supervisor dies without reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// A new instance: remove everything (as `down` would).
    Down,
    /// A resume: keep the paused state to try again.
    KeepPaused,
}

/// Writes the record, starts the supervisor and waits for its report.
pub(crate) fn launch_supervisor(
    home: &Path,
    dir: &InstanceDir,
    state: InstanceState,
    supervisor: &SupervisorCommand,
    warnings: Vec<String>,
    lost: Lost,
) -> Result<UpOutcome, RuntimeError> {
    let ready_timeout = Duration::from_millis(state.ready_timeout_ms);
    let name = dir.name.clone();
    if let Err(e) = state.save(&dir.state_json()) {
        if lost == Lost::Down {
            let _ = std::fs::remove_dir_all(&dir.dir);
        }
        return Err(e);
    }
    let report = run_supervisor(home, dir, supervisor, ready_timeout);
    match report {
        Ok(UpReport::Ready {
            timings,
            started_by,
        }) => Ok(UpOutcome {
            name: name.to_string(),
            ports: state.published().to_vec(),
            image_id: state.image.id,
            timings,
            warnings,
            started_by,
        }),
        Ok(UpReport::Failed { message, log_tail }) => Err(RuntimeError::UpFailed {
            name: name.to_string(),
            message,
            log_tail,
        }),
        Err(message) => {
            // The supervisor died or hung without reporting: clean up for it.
            let log_tail = logs::tail(&dir.console_log(), FAILURE_LOG_LINES);
            let supervisor_tail = logs::tail(&dir.supervisor_log(), 10);
            match lost {
                Lost::Down => {
                    let _ = crate::down::down(home, &name, Duration::from_secs(1));
                }
                Lost::KeepPaused => crate::lifecycle::abandon_resume(dir),
            }
            let message = if supervisor_tail.is_empty() {
                message
            } else {
                format!("{message}\n{supervisor_tail}")
            };
            Err(RuntimeError::UpFailed {
                name: name.to_string(),
                message,
                log_tail,
            })
        }
    }
}

/// Admission of a launch into the claimed `dir` (without a request:
/// admitted unaudited); what the audit trail will say about it.
pub(crate) fn admit_claimed(
    home: &Path,
    dir: &InstanceDir,
    admission: Option<&AdmissionRequest>,
    launch: &Launch,
    launch_sha256: &str,
    image: &ImageRef,
    assets: &BootAssets,
) -> Result<Option<AuditInfo>, RuntimeError> {
    let Some(req) = admission else {
        return Ok(None);
    };
    let admitted = crate::admission::admit(
        home,
        dir.name.as_str(),
        req,
        launch,
        launch_sha256,
        image,
        assets,
    )?;
    Ok(req.policy.audit.then(|| AuditInfo {
        ir_hash: launch.ir_hash.clone(),
        plan_sha256: admitted.plan_sha256,
    }))
}

/// Creates the instance directory; creating it is what claims the name.
pub(crate) fn claim(home: &Path, name: &InstanceName) -> Result<InstanceDir, RuntimeError> {
    let root = instances_root(home);
    crate::private::create_dir_all(&root).map_err(|source| RuntimeError::Io {
        what: format!("creating {}", root.display()),
        source,
    })?;
    let dir = InstanceDir::new(home, name.clone());
    match crate::private::create_dir(&dir.dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let observed = InstanceState::load(&dir.state_json()).map(|s| s.observe());
            match observed {
                Ok(Observed::Running) | Ok(Observed::Starting) => {
                    Err(RuntimeError::AlreadyRunning {
                        name: name.to_string(),
                    })
                }
                Ok(other) => Err(RuntimeError::AlreadyExists {
                    name: name.to_string(),
                    status: other.as_str().into(),
                }),
                Err(_) => Err(RuntimeError::AlreadyExists {
                    name: name.to_string(),
                    status: "unknown".into(),
                }),
            }
        }
        Err(source) => Err(RuntimeError::Io {
            what: format!("creating {}", dir.dir.display()),
            source,
        }),
    }
}

pub(crate) fn initial_state(
    dir: &InstanceDir,
    image: ImageRef,
    launch: &Launch,
    assets: &BootAssets,
    ready_timeout: Duration,
) -> InstanceState {
    let mut guest = GuestConfig::default();
    for (var, value) in &launch.env {
        let v = match value {
            EnvValue::Literal { value } => value.clone(),
            EnvValue::SecretRef { name, .. } => {
                guest.secret_tokens.insert(var.clone(), name.clone());
                secrets::mint_token(name)
            }
        };
        guest.env.insert(var.clone(), v);
    }
    guest.service = match launch.primary() {
        Some(Entrypoint::Command { name, .. }) => Some(name.clone()),
        _ => None,
    };
    let vm = VmConfig {
        kernel: assets.kernel.clone(),
        initrd: assets.initrd.clone(),
        cmdline: assets.cmdline.clone(),
        vcpus: launch.resources.cpu_cores,
        memory_mb: launch.resources.memory_mib,
        rootfs: image.rootfs.clone(),
        scratch: dir.scratch_img(),
        scratch_mb: launch.resources.rootfs_size_mib,
        network: NetworkConfig::None,
        accel: assets.accel,
    };
    InstanceState {
        name: dir.name.clone(),
        status: Status::Starting,
        created_unix_ms: now_unix_ms(),
        ready_unix_ms: None,
        ready_timeout_ms: ready_timeout.as_millis() as u64,
        image,
        supervisor: None,
        qemu: None,
        timings: Timings::default(),
        persist: Persisted {
            vm,
            guest,
            broker: Default::default(),
        },
        audit: None,
        start: crate::state::Start::Boot,
        started_by: None,
        lease: None,
    }
}

/// Margin beyond the ready timeout before `up` stops waiting for a
/// supervisor that neither reported nor exited (it enforces the timeout
/// itself; this only guards against a hung supervisor).
const SUPERVISOR_REPORT_MARGIN: Duration = Duration::from_secs(30);

/// Starts the supervisor detached (own session, so it outlives `up` and
/// the terminal) and reads its one-line report from the stdout pipe.
fn run_supervisor(
    home: &Path,
    dir: &InstanceDir,
    supervisor: &SupervisorCommand,
    ready_timeout: Duration,
) -> Result<UpReport, String> {
    // Appended to: a resumed instance keeps the log of its earlier runs.
    let log = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.supervisor_log())
            .map_err(|e| format!("opening supervisor.log: {e}"))?
    };
    let mut cmd = Command::new(&supervisor.program);
    cmd.args(&supervisor.args)
        .arg(dir.name.as_str())
        .env("MVM_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            // Whatever the supervisor and QEMU create is the owner's only.
            libc::umask(0o077);
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        RuntimeError::SpawnSupervisor {
            name: dir.name.to_string(),
            program: supervisor.program.clone(),
            source: e,
        }
        .to_string()
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let outcome = match BufReader::new(stdout).read_line(&mut line) {
            Ok(0) => Err("the supervisor exited without reporting".to_string()),
            Ok(_) => serde_json::from_str::<UpReport>(&line)
                .map_err(|e| format!("the supervisor's report is malformed ({e}): {line}")),
            Err(e) => Err(format!("reading the supervisor's report: {e}")),
        };
        let _ = tx.send(outcome);
    });
    let wait = ready_timeout + SUPERVISOR_REPORT_MARGIN;
    let outcome = rx
        .recv_timeout(wait)
        .unwrap_or_else(|_| Err(format!("no report from the supervisor after {wait:?}")));
    if matches!(outcome, Ok(UpReport::Ready { .. })) {
        // The supervisor lives on in its own session. Reap it whenever it
        // exits while this process is still around (a long-lived caller
        // such as a test run would otherwise collect zombies).
        std::thread::spawn(move || child.wait());
    } else {
        let _ = child.kill();
        let _ = child.wait();
    }
    outcome
}
