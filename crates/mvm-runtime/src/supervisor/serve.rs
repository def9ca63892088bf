//! Serving CLI clients on `control.sock` once the instance is ready, and
//! stopping it when asked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mvm_proto::{FrameError, HookPhase, frame};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::control::{self, Bytes, Event, Request};
use crate::error::RuntimeError;
use crate::home::InstanceDir;
use crate::snapshot::{self, Staging};
use crate::state::{InstanceState, Lease, LeaseAction, Status, now_unix_ms};

use super::agent::{Agent, FileOp};
use super::capture;
use super::error::SupervisorError;
use super::machine::Machine;
use super::trail::Trail;

/// A `stop` request handed from a client connection to the main loop,
/// which owns the machine and answers on the client's stream itself: the
/// supervisor exits right after, which would cancel any other task.
struct StopRequest {
    grace: Duration,
    stream: UnixStream,
}

/// What the main loop is asked to end the supervisor with.
enum Ending {
    Stop(StopRequest),
    /// Save the guest to `paused/`, then exit.
    Pause(UnixStream),
}

/// How long a snapshot waits for running requests to finish.
const QUIESCE_LIMIT: Duration = Duration::from_secs(10);

/// How long a guest whose lease expired gets to power off.
const LEASE_STOP_GRACE: Duration = Duration::from_secs(10);

/// How long `mvmctl down` of an expired instance may take before the
/// supervisor stops the guest itself.
const DOWN_FALLBACK: Duration = Duration::from_secs(60);

/// A renewal asked for by a client: the new timeout, and where to answer
/// with the new expiry (ms since the epoch).
type Renewal = (u64, tokio::sync::oneshot::Sender<Result<u64, String>>);

/// Starts `mvmctl down NAME` (this supervisor's own binary) detached, in a
/// session of its own: it outlives this process, which it stops.
fn spawn_down(home: &Path, dir: &InstanceDir) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("down")
        .arg(dir.name.as_str())
        .env("MVM_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    // Reaped by nobody: it is reparented to init when this process exits.
    cmd.spawn().map(drop)
}

/// How long before_stop may run before the guest is stopped anyway.
const BEFORE_STOP_LIMIT: Duration = Duration::from_secs(30);

/// Serves until the instance is stopped (returns 0) or QEMU exits on its
/// own (returns 1; the record then shows the instance as dead). With a
/// `trail`, each client request, the stop and a crash are audited.
pub async fn serve(
    home: &Path,
    listener: UnixListener,
    agent: Agent,
    mut machine: Machine,
    dir: InstanceDir,
    trail: Option<Trail>,
    broker: Arc<mvm_broker::Broker>,
) -> i32 {
    let (stop_tx, mut stop_rx) = mpsc::channel::<Ending>(1);
    let recorded = InstanceState::load(&dir.state_json()).ok();
    let lease = recorded.as_ref().and_then(|st| st.lease);
    let (renew_tx, mut renew_rx) = mpsc::channel::<Renewal>(8);
    let ctx = Arc::new(Ctx {
        home: home.to_path_buf(),
        dir: dir.clone(),
        renew: renew_tx,
    });
    let mut deadline = lease_deadline(lease.as_ref());
    // Set once `mvmctl down` was started for an expired lease: if the
    // instance still runs at the next deadline, it is stopped here.
    let mut down_started = false;
    loop {
        tokio::select! {
            Some((timeout_ms, answer)) = renew_rx.recv() => {
                // Here, not in the client's task: the main loop is the one
                // writer of the record while it runs (pause, stop).
                let renewed = renew(&ctx, timeout_ms).map_err(|e| e.to_string());
                if let Ok((_, at)) = &renewed {
                    deadline = Some(*at);
                    down_started = false;
                }
                let _ = answer.send(renewed.map(|(ms, _)| ms));
            }
            () = sleep_until(deadline), if down_started => {
                tracing::warn!("`mvmctl down` did not stop the expired instance; stopping it here");
                if machine.is_running() {
                    stop_instance(&agent, &mut machine, &dir, LEASE_STOP_GRACE).await;
                }
                if let Some(trail) = &trail {
                    trail.down().await;
                }
                return 0;
            }
            () = sleep_until(deadline), if !down_started => {
                // Read again: the record says what the lease asks for now.
                let action = InstanceState::load(&dir.state_json())
                    .ok()
                    .and_then(|st| st.lease)
                    .map(|l| l.on_expiry)
                    .unwrap_or_default();
                tracing::info!("the instance's lease expired; {}", match action {
                    LeaseAction::Kill => "stopping it",
                    LeaseAction::Pause => "pausing it",
                });
                if action == LeaseAction::Pause {
                    match pause(&ctx, &agent, &mut machine).await {
                        Ok(_) => return 0,
                        Err(e) => {
                            let message = broker.redactor().redact_str(&e.to_string());
                            tracing::error!("pausing at lease expiry failed ({message}); stopping it instead");
                        }
                    }
                }
                // `mvmctl down` does everything a stop involves (its stop
                // request comes back here, then it removes the instance),
                // so an expired instance leaves nothing behind.
                down_started = true;
                deadline = Some(Instant::now() + DOWN_FALLBACK);
                if let Err(e) = spawn_down(home, &dir) {
                    tracing::warn!("starting `mvmctl down` at lease expiry: {e}; stopping the guest here");
                    if machine.is_running() {
                        stop_instance(&agent, &mut machine, &dir, LEASE_STOP_GRACE).await;
                    }
                    if let Some(trail) = &trail {
                        trail.down().await;
                    }
                    return 0;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match admit(&stream) {
                    Ok(()) => {
                        tokio::spawn(client(stream, agent.clone(), stop_tx.clone(), trail.clone(), broker.clone(), ctx.clone()));
                    }
                    Err(why) => tracing::warn!("refused a control connection: {why}"),
                },
                Err(e) => tracing::warn!("accepting a control connection: {e}"),
            },
            status = machine.exited() => {
                tracing::error!("QEMU exited on its own ({status}); the instance is dead");
                if let Some(trail) = &trail {
                    trail.crash(format!("QEMU exited on its own ({status})")).await;
                }
                return 1;
            }
            Some(ending) = stop_rx.recv() => match ending {
            Ending::Pause(mut stream) => {
                match pause(&ctx, &agent, &mut machine).await {
                    Ok(event) => {
                        if let Err(e) = write_frame(&mut stream, &event).await {
                            tracing::debug!("the client of the pause went away: {e}");
                        }
                        return 0;
                    }
                    Err(e) => {
                        let message = broker.redactor().redact_str(&e.to_string());
                        tracing::error!("pause failed: {message}");
                        let _ = write_frame(&mut stream, &Event::Failed { message }).await;
                        if !machine.is_running() {
                            if let Some(trail) = &trail {
                                trail.crash(format!("QEMU exited during a pause: {e}")).await;
                            }
                            return 1;
                        }
                    }
                }
            }
            Ending::Stop(StopRequest { grace, mut stream }) => {
                let before_stop = stop_instance(&agent, &mut machine, &dir, grace).await;
                // Before the answer: once `down` hears back it leaves the
                // `down` record to us.
                if let Some(trail) = &trail {
                    trail.down().await;
                }
                let before_stop = broker.redactor().redact_str(&before_stop);
                if let Err(e) = write_frame(&mut stream, &Event::Stopped { before_stop }).await {
                    tracing::debug!("the client of the stop went away: {e}");
                }
                return 0;
            }
            },
        }
    }
}

/// Where the instance lives, for requests that save it.
struct Ctx {
    home: PathBuf,
    dir: InstanceDir,
    /// Renewals, carried out by the main loop.
    renew: mpsc::Sender<Renewal>,
}

async fn file_request(
    stream: &mut UnixStream,
    agent: &Agent,
    op: FileOp,
    redactor: &mvm_broker::Redactor,
) -> Result<(), RuntimeError> {
    let event = match agent.file(op).await {
        Ok(event) => redact_event(redactor, event),
        Err(e) => Event::Failed {
            message: redactor.redact_str(&e.to_string()),
        },
    };
    write_frame(stream, &event).await
}

/// Restarts the lease from now in the record; returns the new expiry (ms
/// since the epoch) and the instant it is.
fn renew(ctx: &Ctx, timeout_ms: u64) -> Result<(u64, Instant), SupervisorError> {
    let path = ctx.dir.state_json();
    let mut st = InstanceState::load(&path)?;
    let now = now_unix_ms();
    let expires_unix_ms = now.saturating_add(timeout_ms);
    let lease = st.lease.get_or_insert(Lease {
        timeout_ms,
        on_expiry: LeaseAction::Kill,
        expires_unix_ms: None,
    });
    lease.timeout_ms = timeout_ms;
    lease.expires_unix_ms = Some(expires_unix_ms);
    st.save(&path)?;
    Ok((
        expires_unix_ms,
        Instant::now() + Duration::from_millis(timeout_ms),
    ))
}

/// The instant a lease recorded as expiring at `expires_unix_ms` ends.
fn lease_deadline(lease: Option<&Lease>) -> Option<Instant> {
    let expires = lease?.expires_unix_ms?;
    let left = expires.saturating_sub(now_unix_ms());
    Some(Instant::now() + Duration::from_millis(left))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Saves the guest to `paused/` (its disk linked, not copied) and stops
/// QEMU. The record says `paused` only once the saved state is sealed
/// and published; a failure before that leaves the guest running.
async fn pause(ctx: &Ctx, agent: &Agent, machine: &mut Machine) -> Result<Event, SupervisorError> {
    let path = ctx.dir.state_json();
    let mut st = InstanceState::load(&path)?;
    let key = capture::seal_key(&ctx.home)?;
    let bindings = snapshot::bindings(&st.persist.vm, &st.image)?;
    // The instance's record, sealed with the state: `resume` runs what
    // was paused, not whatever the record says by then.
    let payload = serde_json::to_value(snapshot::Saved {
        source: st.name.to_string(),
        image: st.image.clone(),
        persist: st.persist.clone(),
        audit: st.audit.clone(),
        ready_timeout_ms: st.ready_timeout_ms,
    })
    .expect("the record serializes");
    let _quiet = agent.quiesce(QUIESCE_LIMIT).await?;
    st.status = Status::Pausing;
    st.save(&path)?;
    let restore_ready = |mut st: InstanceState| {
        st.status = Status::Ready;
        st.save(&path)
    };
    // A paused state from an earlier, failed clean-up is stale now.
    let paused = snapshot::paused_dir(&ctx.dir);
    if paused.exists() {
        let _ = mvm_snapshot::remove(&paused);
    }
    let _ = mvm_snapshot::clean_staging(&ctx.dir.dir);
    let staging = match Staging::new(&ctx.dir.dir, "paused") {
        Ok(s) => s,
        Err(e) => {
            restore_ready(st)?;
            return Err(SupervisorError::Snapshot(e.to_string()));
        }
    };
    let saved = match capture::save(&ctx.dir, &st.persist.vm, staging, capture::Scratch::Link).await
    {
        Ok(saved) => saved,
        Err(e) => {
            restore_ready(st)?;
            return Err(e);
        }
    };
    let capture::Saved {
        staging,
        mut qmp,
        stopped,
    } = saved;
    let snap = match capture::commit(staging, &key, snapshot::KIND_PAUSED, bindings, payload) {
        Ok(snap) => snap,
        Err(e) => {
            let _ = qmp.cont();
            restore_ready(st)?;
            return Err(e);
        }
    };
    // From here the saved state is what counts: the record says so
    // before QEMU goes. QEMU stays in it until it is gone, so whoever
    // finds this supervisor dead in between can still stop it.
    st.status = Status::Paused;
    st.supervisor = None;
    if let Err(e) = st.save(&path) {
        let _ = qmp.cont();
        let _ = mvm_snapshot::remove(&snap.dir().to_path_buf());
        st.status = Status::Ready;
        st.supervisor = Some(crate::process::ProcessRef::current());
        let _ = st.save(&path);
        return Err(e.into());
    }
    if let Err(e) = qmp.quit() {
        tracing::debug!("asking QEMU to quit: {e}");
    }
    if tokio::time::timeout(Duration::from_secs(5), machine.exited())
        .await
        .is_err()
    {
        machine.kill().await;
    }
    st.qemu = None;
    st.save(&path)?;
    let _ = std::fs::remove_file(ctx.dir.control_sock());
    Ok(Event::Paused {
        bytes: snap.disk_usage(),
        stopped_ms: stopped.elapsed().as_millis() as u64,
    })
}

/// Saves the running guest as the tagged snapshot `tag`, with what it
/// takes to recreate the instance; the guest runs on.
async fn snapshot(ctx: &Ctx, agent: &Agent, tag: &str) -> Result<Event, SupervisorError> {
    let tag = snapshot::parse_tag(tag)?;
    let root = snapshot::tagged_root(&ctx.home);
    if root.join(&tag).exists() {
        return Err(RuntimeError::SnapshotExists { tag }.into());
    }
    let st = InstanceState::load(&ctx.dir.state_json())?;
    let key = capture::seal_key(&ctx.home)?;
    let bindings = snapshot::bindings(&st.persist.vm, &st.image)?;
    let saved_instance = snapshot::Saved {
        source: st.name.to_string(),
        image: st.image.clone(),
        persist: st.persist.clone(),
        audit: st.audit.clone(),
        ready_timeout_ms: st.ready_timeout_ms,
    };
    let payload = serde_json::to_value(&saved_instance).expect("the record serializes");
    let _quiet = agent.quiesce(QUIESCE_LIMIT).await?;
    let _ = mvm_snapshot::clean_staging(&root);
    let staging =
        Staging::new(&root, &tag).map_err(|e| SupervisorError::Snapshot(e.to_string()))?;
    let capture::Saved {
        staging,
        mut qmp,
        stopped,
    } = capture::save(&ctx.dir, &st.persist.vm, staging, capture::Scratch::Copy).await?;
    let resumed = qmp.cont();
    let stopped_ms = stopped.elapsed().as_millis() as u64;
    resumed.map_err(|e| SupervisorError::Snapshot(format!("resuming the guest: {e}")))?;
    let snap = capture::commit(staging, &key, snapshot::KIND_TAGGED, bindings, payload)?;
    Ok(Event::Snapshotted {
        tag,
        bytes: snap.disk_usage(),
        stopped_ms,
    })
}

/// Only the instance's owner may use its control socket (SO_PEERCRED),
/// whatever the socket's and directory's modes say.
pub(crate) fn admit(stream: &UnixStream) -> Result<(), String> {
    match stream.peer_cred() {
        Ok(cred) if crate::private::is_owner(cred.uid()) => Ok(()),
        Ok(cred) => Err(format!(
            "the peer is uid {}; only the owner may connect",
            cred.uid()
        )),
        Err(e) => Err(format!("no peer credentials ({e})")),
    }
}

/// before_stop (best-effort), guest power-off, QEMU exit within `grace`
/// or killed. Returns before_stop's outcome for the user.
async fn stop_instance(
    agent: &Agent,
    machine: &mut Machine,
    dir: &InstanceDir,
    grace: Duration,
) -> String {
    if let Ok(mut st) = InstanceState::load(&dir.state_json()) {
        st.status = Status::Stopping;
        if let Err(e) = st.save(&dir.state_json()) {
            tracing::warn!("recording the stop: {e}");
        }
    }
    let before_stop = match tokio::time::timeout(
        BEFORE_STOP_LIMIT,
        agent.run_hook(HookPhase::BeforeStop),
    )
    .await
    {
        Ok(Ok(h)) if h.exit_code == 0 => "before_stop ok".to_string(),
        Ok(Ok(h)) => format!(
            "before_stop exited {}: {}",
            h.exit_code,
            h.output.trim_end()
        ),
        Ok(Err(e)) => format!("before_stop not run: {e}"),
        Err(_) => format!("before_stop still running after {BEFORE_STOP_LIMIT:?}; stopped anyway"),
    };
    tracing::info!("{before_stop}");
    if let Err(e) = agent.shutdown().await {
        tracing::warn!("asking the guest to power off: {e}");
    }
    if tokio::time::timeout(grace, machine.exited()).await.is_err() {
        tracing::warn!("QEMU still running {grace:?} after the power-off request; killing it");
        machine.kill().await;
    }
    before_stop
}

async fn client(
    mut stream: UnixStream,
    agent: Agent,
    stop: mpsc::Sender<Ending>,
    trail: Option<Trail>,
    broker: Arc<mvm_broker::Broker>,
    ctx: Arc<Ctx>,
) {
    let redactor = broker.redactor();
    let request = match read_frame::<Request>(&mut stream).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            let _ = write_frame(
                &mut stream,
                &Event::Failed {
                    message: e.to_string(),
                },
            )
            .await;
            return;
        }
    };
    let result = match request {
        Request::Invoke { entrypoint, args } => {
            let asked = entrypoint.clone();
            let t = Instant::now();
            let outcome = agent.invoke(entrypoint, args).await;
            let took = t.elapsed();
            // Recorded before the answer (see Trail::invoke for the cost).
            if let Some(trail) = &trail {
                trail.invoke(asked.as_deref(), &outcome, took).await;
            }
            match outcome {
                Ok(ev) => write_frame(&mut stream, &redact_event(redactor, ev)).await,
                Err(e) => {
                    write_frame(
                        &mut stream,
                        &Event::Failed {
                            message: redactor.redact_str(&e.to_string()),
                        },
                    )
                    .await
                }
            }
        }
        Request::Exec {
            argv,
            env,
            timeout_ms,
            cwd,
            stdin,
        } => {
            // Only a fingerprint of the argv is audited (argv[0], count,
            // hash): arguments and env values may be secrets.
            let audited_argv = trail.as_ref().map(|_| argv.clone());
            let t = Instant::now();
            let exec = mvm_proto::ExecRequest {
                env,
                timeout_ms,
                cwd,
                stdin: stdin.0,
                ..mvm_proto::ExecRequest::new(argv)
            };
            match agent.exec(exec).await {
                Ok(mut events) => {
                    let mut r = Ok(());
                    let mut recorded = false;
                    // Per stream, so a value split across chunks is still caught.
                    let mut out = ExecRedactor::new(redactor);
                    while let Some(ev) = events.recv().await {
                        let (flushed, ev) = out.event(ev);
                        for tail in flushed {
                            r = r.and(write_frame(&mut stream, &tail).await);
                        }
                        let Some(ev) = ev else { continue };
                        // Exit or Failed is the last event and the client's
                        // final answer: recorded before it is sent.
                        if matches!(ev, Event::Exit { .. } | Event::Failed { .. })
                            && let (Some(trail), Some(argv)) = (&trail, &audited_argv)
                        {
                            trail.exec(argv, Some(&ev), t.elapsed()).await;
                            recorded = true;
                        }
                        // A client that went away stops receiving, but the
                        // command still runs to its end in the guest.
                        r = r.and(write_frame(&mut stream, &ev).await);
                    }
                    // The relay ended without a final event (it died).
                    if !recorded && let (Some(trail), Some(argv)) = (&trail, audited_argv) {
                        trail.exec(&argv, None, t.elapsed()).await;
                    }
                    r
                }
                Err(e) => {
                    if let (Some(trail), Some(argv)) = (&trail, audited_argv) {
                        trail.exec(&argv, None, t.elapsed()).await;
                    }
                    write_frame(
                        &mut stream,
                        &Event::Failed {
                            message: redactor.redact_str(&e.to_string()),
                        },
                    )
                    .await
                }
            }
        }
        Request::Stop { grace_ms } => {
            let grace = Duration::from_millis(grace_ms);
            // Only fails once the main loop has stopped, i.e. another stop won.
            let _ = stop.send(Ending::Stop(StopRequest { grace, stream })).await;
            return;
        }
        Request::Pause {} => {
            let _ = stop.send(Ending::Pause(stream)).await;
            return;
        }
        Request::Renew { timeout_ms } => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let answer = match ctx.renew.send((timeout_ms, tx)).await {
                Ok(()) => rx
                    .await
                    .unwrap_or_else(|_| Err("the instance is stopping".into())),
                Err(_) => Err("the instance is stopping".into()),
            };
            let event = match answer {
                Ok(expires_unix_ms) => Event::Renewed { expires_unix_ms },
                Err(message) => Event::Failed { message },
            };
            write_frame(&mut stream, &event).await
        }
        Request::FileWrite {
            path,
            data,
            mode,
            append,
        } => {
            let op = FileOp::Write {
                path,
                data: data.0,
                mode,
                append,
            };
            file_request(&mut stream, &agent, op, redactor).await
        }
        Request::Ping {} => {
            let event = match agent.ping().await {
                Ok(()) => Event::Pong,
                Err(e) => Event::Failed {
                    message: e.to_string(),
                },
            };
            write_frame(&mut stream, &event).await
        }
        Request::Stat { path } => {
            file_request(&mut stream, &agent, FileOp::Stat { path }, redactor).await
        }
        Request::List { path } => {
            file_request(&mut stream, &agent, FileOp::List { path }, redactor).await
        }
        Request::Snapshot { tag } => {
            let event = match snapshot(&ctx, &agent, &tag).await {
                Ok(event) => event,
                Err(e) => Event::Failed {
                    message: redactor.redact_str(&e.to_string()),
                },
            };
            write_frame(&mut stream, &event).await
        }
    };
    if let Err(e) = result {
        tracing::debug!("control client went away: {e}");
    }
}

/// An exec's output streams, redacted as they pass: each holds back what
/// could be the start of a value until the next chunk or the end.
struct ExecRedactor<'r> {
    redactor: &'r mvm_broker::Redactor,
    stdout: Option<mvm_broker::StreamRedactor<'r>>,
    stderr: Option<mvm_broker::StreamRedactor<'r>>,
}

impl<'r> ExecRedactor<'r> {
    fn new(redactor: &'r mvm_broker::Redactor) -> Self {
        ExecRedactor {
            redactor,
            stdout: Some(redactor.stream()),
            stderr: Some(redactor.stream()),
        }
    }

    /// What to send for `ev`: output held back until now (on the final
    /// event), then `ev` itself redacted, or `None` when all of it is held.
    fn event(&mut self, ev: Event) -> (Vec<Event>, Option<Event>) {
        let push = |s: &mut Option<mvm_broker::StreamRedactor<'r>>, data: &[u8]| {
            s.as_mut()
                .map(|s| s.push(data))
                .unwrap_or_else(|| data.to_vec())
        };
        let non_empty =
            |data: Vec<u8>, f: fn(Bytes) -> Event| (!data.is_empty()).then(|| f(Bytes(data)));
        match ev {
            Event::Stdout { data } => {
                let data = push(&mut self.stdout, &data.0);
                (Vec::new(), non_empty(data, |data| Event::Stdout { data }))
            }
            Event::Stderr { data } => {
                let data = push(&mut self.stderr, &data.0);
                (Vec::new(), non_empty(data, |data| Event::Stderr { data }))
            }
            last => {
                let mut flushed = Vec::new();
                let rest = self.stdout.take().map(|s| s.finish()).unwrap_or_default();
                flushed.extend(non_empty(rest, |data| Event::Stdout { data }));
                let rest = self.stderr.take().map(|s| s.finish()).unwrap_or_default();
                flushed.extend(non_empty(rest, |data| Event::Stderr { data }));
                (flushed, Some(redact_event(self.redactor, last)))
            }
        }
    }
}

/// `ev` with every known secret value replaced by `[secret:NAME]`: the
/// guest should never hold one, but what the host relays is cleaned in
/// case it does (or the operator's own command line put one there).
fn redact_event(redactor: &mvm_broker::Redactor, ev: Event) -> Event {
    if redactor.is_empty() {
        return ev;
    }
    match ev {
        Event::InvokeResult { value } => Event::InvokeResult {
            value: redact_value(redactor, value),
        },
        Event::InvokeError {
            kind,
            message,
            traceback,
        } => Event::InvokeError {
            kind: redactor.redact_str(&kind),
            message: redactor.redact_str(&message),
            traceback: traceback.map(|t| redactor.redact_str(&t)),
        },
        Event::Stdout { data } => Event::Stdout {
            data: Bytes(redactor.redact(&data.0).into_owned()),
        },
        Event::Stderr { data } => Event::Stderr {
            data: Bytes(redactor.redact(&data.0).into_owned()),
        },
        Event::Stopped { before_stop } => Event::Stopped {
            before_stop: redactor.redact_str(&before_stop),
        },
        Event::Failed { message } => Event::Failed {
            message: redactor.redact_str(&message),
        },
        Event::FileError { kind, message } => Event::FileError {
            kind,
            message: redactor.redact_str(&message),
        },
        other @ (Event::Exit { .. }
        | Event::Paused { .. }
        | Event::Snapshotted { .. }
        | Event::Renewed { .. }
        | Event::Done
        | Event::Pong
        | Event::Stat { .. }
        | Event::Listing { .. }) => other,
    }
}

/// Every string in a JSON value (keys too), redacted.
fn redact_value(redactor: &mvm_broker::Redactor, v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(redactor.redact_str(&s)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| redact_value(redactor, i))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (redactor.redact_str(&k), redact_value(redactor, v)))
                .collect(),
        ),
        other => other,
    }
}

/// mvm-proto's framing (as in [`control::read_frame`]) over the async socket.
async fn read_frame<T: serde::de::DeserializeOwned>(
    s: &mut UnixStream,
) -> Result<Option<T>, RuntimeError> {
    const DOING: &str = "reading a request";
    let mut header = [0u8; frame::HEADER_BYTES];
    match s.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(control::channel_error(DOING, e.into())),
    }
    let len = frame::body_len(header).map_err(|e| control::channel_error(DOING, e))?;
    // Grows with what arrives, as mvm-proto's reader does.
    let mut body = Vec::new();
    (&mut *s)
        .take(len as u64)
        .read_to_end(&mut body)
        .await
        .map_err(|e| control::channel_error(DOING, e.into()))?;
    if body.len() != len {
        let truncated = FrameError::Truncated {
            expected: len,
            got: body.len(),
        };
        return Err(control::channel_error(DOING, truncated));
    }
    frame::decode(&body)
        .map(Some)
        .map_err(|e| control::channel_error(DOING, e))
}

async fn write_frame<T: serde::Serialize>(s: &mut UnixStream, msg: &T) -> Result<(), RuntimeError> {
    let bytes = frame::encode_frame(msg).map_err(|e| control::channel_error("answering", e))?;
    s.write_all(&bytes)
        .await
        .map_err(|e| control::channel_error("answering", e.into()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    use super::admit;
    use crate::control::{self, Bytes, Event, Request};

    /// The CLI side (blocking) and the supervisor side (async) of a real
    /// socket speak the same framing; an oversized length is refused.
    #[tokio::test]
    async fn the_cli_and_the_supervisor_read_each_other() {
        let (mut cli, supervisor) = std::os::unix::net::UnixStream::pair().unwrap();
        supervisor.set_nonblocking(true).unwrap();
        let mut supervisor = tokio::net::UnixStream::from_std(supervisor).unwrap();

        let request = Request::Stop { grace_ms: 250 };
        control::write_frame(&mut cli, &request).unwrap();
        let got: Request = super::read_frame(&mut supervisor).await.unwrap().unwrap();
        assert_eq!(got, request);

        let event = Event::Stdout {
            data: Bytes(vec![0, 1, 255]),
        };
        super::write_frame(&mut supervisor, &event).await.unwrap();
        assert_eq!(control::read_frame::<Event>(&mut cli).unwrap(), Some(event));

        use std::io::Write;
        cli.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let err = super::read_frame::<Request>(&mut supervisor)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "control channel: frame of 4294967295 bytes exceeds the 16777216-byte limit"
        );

        cli.write_all(&[0, 0, 0, 2, b'{', b'}']).unwrap();
        let err = super::read_frame::<Request>(&mut supervisor)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("control channel: malformed message: missing field `op`"),
            "{err}"
        );

        drop(cli);
        assert!(
            super::read_frame::<Request>(&mut supervisor)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// A real connection from another uid (nobody) is refused; one from
    /// the owner is admitted. The directory is opened up on purpose: the
    /// peer check must hold even when the modes do not.
    #[tokio::test]
    async fn only_the_owner_is_admitted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let sock = dir.path().join("control.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
        let connect = |uid: Option<u32>| {
            let mut cmd = std::process::Command::new("python3");
            cmd.args([
                "-c",
                "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(1)",
            ])
            .arg(&sock);
            if let Some(uid) = uid {
                cmd.uid(uid).gid(uid);
            }
            cmd.spawn().unwrap()
        };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            me, 0,
            "the test suite runs as root, so it can act as another user"
        );
        let mut other = connect(Some(65534));
        let (stream, _) = listener.accept().await.unwrap();
        let refused = admit(&stream).unwrap_err();
        assert!(refused.contains("uid 65534"), "{refused}");
        let mut owner = connect(None);
        let (stream, _) = listener.accept().await.unwrap();
        admit(&stream).unwrap();
        let _ = (other.wait(), owner.wait());
    }
}
