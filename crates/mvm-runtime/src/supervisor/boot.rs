//! Start-up: QEMU (booted, or restored from a snapshot), the agent's
//! hello, configure, before_start, the command service and the
//! after_start readiness probe, each timed; and on the first boot of an
//! image's machine shape, its template snapshot.

use std::path::Path;
use std::time::{Duration, Instant};

use mvm_proto::HookPhase;

use crate::home::InstanceDir;
use crate::snapshot::{self, SealKey, Staging, TemplateSlot};
use crate::state::{InstanceState, Start, Timings};

use super::agent::Agent;
use super::capture;
use super::error::SupervisorError;
use super::machine::Machine;

/// How often after_start is retried until it passes (the spec's 200 ms).
const READINESS_POLL: Duration = Duration::from_millis(200);

pub struct Started {
    pub agent: Agent,
    pub machine: Machine,
    pub timings: Timings,
    /// The guest's broker channel, served from the agent's hello on.
    pub broker: super::broker::Serving,
}

/// The broker to serve once the agent is up (hooks may already call it).
pub struct BrokerStart {
    pub broker: std::sync::Arc<mvm_broker::Broker>,
    pub ctx: super::broker::Context,
}

/// How far a start goes once QEMU runs.
struct Plan {
    /// The guest was restored: its agent greeted before it was saved.
    attach: bool,
    /// Run the lifecycle (configure, before_start, service, after_start):
    /// a boot or a template restore. A resumed or forked guest is past it.
    lifecycle: bool,
    /// Save a template snapshot at the template point on the way.
    capture: Option<(TemplateSlot, SealKey)>,
}

/// Boots or restores the instance, as its record's [`Start`] says, and
/// brings it to ready. On error, QEMU is already stopped when this
/// returns. A template that cannot be used costs a boot, not the start.
pub async fn start(
    home: &Path,
    dir: &InstanceDir,
    st: &mut InstanceState,
    broker: BrokerStart,
) -> Result<Started, SupervisorError> {
    let timeout = Duration::from_millis(st.ready_timeout_ms);
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let boot = |capture| Plan {
        attach: false,
        lifecycle: true,
        capture,
    };
    match st.start.clone() {
        Start::Boot => cold(dir, st, broker, t0, deadline, boot(None)).await,
        Start::BootAndCapture { template } => {
            let capture = with_key(home, template);
            cold(dir, st, broker, t0, deadline, boot(capture)).await
        }
        Start::Template { template } => {
            let restored = restore(home, dir, st, Restore::Template(&template));
            match restored {
                Ok(machine) => {
                    st.started_by = Some("template".into());
                    let plan = Plan {
                        attach: true,
                        lifecycle: true,
                        capture: None,
                    };
                    run(dir, st, machine, broker, t0, deadline, plan).await
                }
                Err(e) => {
                    tracing::warn!("the template snapshot is unusable, booting instead: {e}");
                    st.started_by = Some(format!("boot (template unusable: {e})"));
                    let _ = std::fs::remove_file(&st.persist.vm.scratch);
                    // A template refused as such (seal, digest, bindings) is
                    // replaced by the one this boot saves; one QEMU could not
                    // start from (a busy host, a timeout) is kept.
                    let capture = if matches!(e, SupervisorError::Snapshot(_)) {
                        if let Err(e) = mvm_snapshot::remove(&template.dir()) {
                            tracing::debug!("removing the unusable template: {e}");
                        }
                        with_key(home, template)
                    } else {
                        None
                    };
                    cold(dir, st, broker, t0, deadline, boot(capture)).await
                }
            }
        }
        Start::Resume => {
            let machine = restore(home, dir, st, Restore::Paused)?;
            st.started_by = Some("resume".into());
            let plan = Plan {
                attach: true,
                lifecycle: false,
                capture: None,
            };
            run(dir, st, machine, broker, t0, deadline, plan).await
        }
        Start::Snapshot { tag } => {
            let machine = restore(home, dir, st, Restore::Tagged(&tag))?;
            st.started_by = Some(format!("snapshot {tag}"));
            let plan = Plan {
                attach: true,
                lifecycle: false,
                capture: None,
            };
            run(dir, st, machine, broker, t0, deadline, plan).await
        }
    }
}

/// The slot and the key to seal its template with; without a key there
/// is no template (the boot goes on).
fn with_key(home: &Path, slot: TemplateSlot) -> Option<(TemplateSlot, SealKey)> {
    match capture::seal_key(home) {
        Ok(key) => Some((slot, key)),
        Err(e) => {
            tracing::warn!("no template snapshot: {e}");
            None
        }
    }
}

enum Restore<'a> {
    Template(&'a TemplateSlot),
    Paused,
    Tagged(&'a str),
}

/// Verifies the snapshot, lays out the instance's scratch disk from it
/// and starts QEMU on the saved state.
fn restore(
    home: &Path,
    dir: &InstanceDir,
    st: &InstanceState,
    what: Restore<'_>,
) -> Result<Machine, SupervisorError> {
    let key = capture::seal_key(home)?;
    let vm = &st.persist.vm;
    let (snap_dir, kind, bindings, copy_scratch) = match what {
        Restore::Template(slot) => (
            slot.dir(),
            snapshot::KIND_TEMPLATE,
            slot.bindings.clone(),
            true,
        ),
        Restore::Paused => {
            // The guest gets a copy: a resume that fails part-way must not
            // have written into the paused state (it is there to retry).
            // The instance's own name for the disk is only a link to it.
            let _ = std::fs::remove_file(&vm.scratch);
            (
                snapshot::paused_dir(dir),
                snapshot::KIND_PAUSED,
                snapshot::bindings(vm, &st.image)?,
                true,
            )
        }
        Restore::Tagged(tag) => (
            snapshot::tagged_root(home).join(tag),
            snapshot::KIND_TAGGED,
            snapshot::bindings(vm, &st.image)?,
            true,
        ),
    };
    let scratch_to = copy_scratch.then_some(vm.scratch.as_path());
    let snap = capture::prepare(&snap_dir, &key, kind, &bindings, scratch_to)?;
    tracing::info!(snapshot = %snap_dir.display(), "restoring");
    // QEMU sets the machine up while the state's digest is checked; it
    // reads not a byte of the state before that passed.
    let mut verify = || {
        snap.open_verified(snapshot::VM_STATE)
            .map_err(|e| e.to_string())
    };
    Machine::restore(vm, dir, &mut verify)
}

/// Boots the kernel.
async fn cold(
    dir: &InstanceDir,
    st: &mut InstanceState,
    broker: BrokerStart,
    t0: Instant,
    deadline: Instant,
    plan: Plan,
) -> Result<Started, SupervisorError> {
    Machine::create_scratch(&st.persist.vm)?;
    let machine = Machine::launch(&st.persist.vm, dir)?;
    if st.started_by.is_none() {
        st.started_by = Some("boot".into());
    }
    run(dir, st, machine, broker, t0, deadline, plan).await
}

async fn run(
    dir: &InstanceDir,
    st: &mut InstanceState,
    mut machine: Machine,
    broker: BrokerStart,
    t0: Instant,
    deadline: Instant,
    plan: Plan,
) -> Result<Started, SupervisorError> {
    let timeout = deadline - t0;
    st.qemu = Some(machine.process());
    st.save(&dir.state_json())?;
    tracing::info!(pid = machine.process().pid, "QEMU started");

    let result = tokio::select! {
        r = bring_up(dir, st, t0, deadline, broker, plan) => r,
        status = machine.exited() => Err(SupervisorError::QemuExited { during: "during start-up", status }),
        // Steps check the deadline themselves and report what they were
        // waiting for; this only catches a step that hangs past it.
        _ = tokio::time::sleep_until((deadline + Duration::from_secs(5)).into()) => Err(SupervisorError::Timeout(timeout)),
    };
    match result {
        Ok((agent, timings, broker)) => Ok(Started {
            agent,
            machine,
            timings,
            broker,
        }),
        Err(e) => {
            machine.kill().await;
            Err(e)
        }
    }
}

async fn bring_up(
    dir: &InstanceDir,
    st: &InstanceState,
    t0: Instant,
    deadline: Instant,
    broker: BrokerStart,
    plan: Plan,
) -> Result<(Agent, Timings, super::broker::Serving), SupervisorError> {
    let mut timings = Timings::default();
    let ms = |since: Instant| since.elapsed().as_millis() as u64;

    let agent = if plan.attach {
        Agent::attach(&dir.agent_sock(), deadline).await?
    } else {
        Agent::connect(&dir.agent_sock(), deadline).await?
    };
    timings.boot_ms = ms(t0);
    tracing::info!(ms = timings.boot_ms, agent = %agent.hello().agent_version, "agent said hello");
    let t = Instant::now();
    if plan.attach {
        // First of all: a restored copy's clock stood still while it was
        // saved, and its random state is a copy until this reseeds it.
        agent.sync_clock().await?;
    }
    // QEMU has listened since it started; the guest may call from its
    // first hook on.
    let serving = super::broker::start(&dir.broker_sock(), broker.broker, broker.ctx).await?;

    if let Some((slot, key)) = &plan.capture {
        // The template point: booted, mounted, runners started, nothing
        // configured. A failure costs only the template.
        let t = Instant::now();
        match capture_template(dir, st, &agent, slot, key).await {
            Ok(bytes) => tracing::info!(
                ms = ms(t),
                mib = bytes >> 20,
                "saved a template snapshot for later ups"
            ),
            Err(e) => tracing::warn!("no template snapshot saved: {e}"),
        }
        timings.capture_ms = ms(t);
    }

    // configure_ms counts the clock too, not the template's saving.
    let t = if plan.attach { t } else { Instant::now() };
    if !plan.attach {
        // The microVM has no RTC: it boots in 1970.
        agent.sync_clock().await?;
    }
    if !plan.lifecycle {
        timings.configure_ms = ms(t);
        timings.total_ms = ms(t0);
        return Ok((agent, timings, serving));
    }
    if let Some(ca) = &st.persist.guest.host_ca {
        let bundle = read_ca(ca)?;
        agent
            .write_file(crate::network::GUEST_CA_FILE, bundle, 0o644)
            .await?;
    }
    agent.configure(&st.persist.guest.env).await?;
    timings.configure_ms = ms(t);

    let t = Instant::now();
    let hook = agent.run_hook(HookPhase::BeforeStart).await?;
    if hook.exit_code != 0 {
        return Err(SupervisorError::BeforeStartFailed {
            code: hook.exit_code,
            output: hook.output,
        });
    }
    timings.before_start_ms = ms(t);

    // The entrypoint is dispatched after before_start and before the
    // readiness probe (seed 003): after_start usually checks the service.
    if let Some(service) = &st.persist.guest.service {
        let t = Instant::now();
        agent.start_service(service).await?;
        timings.service_ms = ms(t);
    }

    let t = Instant::now();
    loop {
        let probe = agent.run_hook(HookPhase::AfterStart).await?;
        if probe.exit_code == 0 {
            break;
        }
        if Instant::now() + READINESS_POLL >= deadline {
            return Err(SupervisorError::NotReady {
                timeout: deadline - t0,
                code: probe.exit_code,
                output: probe.output,
            });
        }
        tokio::time::sleep(READINESS_POLL).await;
    }
    timings.after_start_ms = ms(t);

    timings.total_ms = ms(t0);
    Ok((agent, timings, serving))
}

/// Prewarms the runners and saves the guest as the image's template;
/// returns the snapshot's size on disk.
async fn capture_template(
    dir: &InstanceDir,
    st: &InstanceState,
    agent: &Agent,
    slot: &TemplateSlot,
    key: &SealKey,
) -> Result<u64, SupervisorError> {
    agent.prewarm().await?;
    let _quiet = agent.quiesce(Duration::from_secs(10)).await?;
    if let Err(e) = mvm_snapshot::clean_staging(&slot.parent) {
        tracing::debug!("cleaning old template staging: {e}");
    }
    let staging = Staging::new(&slot.parent, &slot.key)
        .map_err(|e| SupervisorError::Snapshot(e.to_string()))?;
    let mut saved = capture::save(dir, &st.persist.vm, staging, capture::Scratch::Copy).await?;
    let resumed = saved.qmp.cont();
    let stopped = saved.stopped.elapsed();
    resumed.map_err(|e| SupervisorError::Snapshot(format!("resuming the guest: {e}")))?;
    tracing::debug!(?stopped, "guest stopped for the template");
    let snap = capture::commit(
        saved.staging,
        key,
        snapshot::KIND_TEMPLATE,
        slot.bindings.clone(),
        serde_json::Value::Null,
    )?;
    prune_stale_templates(slot, key);
    Ok(snap.disk_usage())
}

/// Templates of this image that no `up` on this host can restore any
/// more (another mvm, VMM, kernel, initramfs or root disk than the one
/// just saved for) or that are broken; other machine shapes are kept.
fn prune_stale_templates(slot: &TemplateSlot, key: &SealKey) {
    const HOST: [&str; 6] = ["mvm", "vmm", "kernel", "initrd", "image", "rootfs"];
    let Ok(listed) = mvm_snapshot::list(&slot.parent, key) else {
        return;
    };
    for (name, opened) in listed {
        if name == slot.key {
            continue;
        }
        let stale = match &opened {
            Ok(other) => HOST
                .iter()
                .any(|k| other.manifest().bindings.get(*k) != slot.bindings.get(*k)),
            Err(_) => true,
        };
        if stale {
            match mvm_snapshot::remove(&slot.parent.join(&name)) {
                Ok(()) => tracing::info!(template = %name, "removed a stale template snapshot"),
                Err(e) => tracing::debug!("removing template {name}: {e}"),
            }
        }
    }
}

/// The host CA bundle, capped (it is read at every boot).
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, SupervisorError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(crate::network::MAX_CA_BYTES + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| {
            SupervisorError::Machine(format!(
                "reading the host CA bundle {}: {e}",
                path.display()
            ))
        })?;
    if bytes.len() as u64 > crate::network::MAX_CA_BYTES {
        return Err(SupervisorError::Machine(format!(
            "the host CA bundle {} is larger than {} bytes",
            path.display(),
            crate::network::MAX_CA_BYTES
        )));
    }
    Ok(bytes)
}
