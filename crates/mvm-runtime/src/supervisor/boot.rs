//! Start-up: QEMU, the agent's hello, configure, before_start, the
//! after_start readiness probe and the command service, each timed.

use std::time::{Duration, Instant};

use mvm_proto::HookPhase;

use crate::home::InstanceDir;
use crate::state::{InstanceState, Timings};

use super::agent::Agent;
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

/// Boots the instance and brings it to ready. On error, QEMU is already
/// stopped when this returns.
pub async fn start(
    dir: &InstanceDir,
    st: &mut InstanceState,
    broker: BrokerStart,
) -> Result<Started, SupervisorError> {
    let timeout = Duration::from_millis(st.ready_timeout_ms);
    Machine::create_scratch(&st.persist.vm)?;
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let mut machine = Machine::launch(&st.persist.vm, dir)?;
    st.qemu = Some(machine.process());
    st.save(&dir.state_json())?;
    tracing::info!(pid = machine.process().pid, "QEMU started");

    let result = tokio::select! {
        r = bring_up(dir, st, t0, deadline, broker) => r,
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
) -> Result<(Agent, Timings, super::broker::Serving), SupervisorError> {
    let mut timings = Timings::default();
    let ms = |since: Instant| since.elapsed().as_millis() as u64;

    let agent = Agent::connect(&dir.agent_sock(), deadline).await?;
    timings.boot_ms = ms(t0);
    tracing::info!(ms = timings.boot_ms, agent = %agent.hello().agent_version, "agent said hello");
    // QEMU has listened since it started; the guest may call from its
    // first hook on.
    let serving = super::broker::start(&dir.broker_sock(), broker.broker, broker.ctx).await?;

    let t = Instant::now();
    agent.sync_clock().await?;
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
