//! Command entrypoints run as supervised services: started by
//! `StartService`, output to the instance log, restarted when they exit
//! until the agent shuts down.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mvm_proto::{AgentError, ErrorKind, ProcessExit, Response};

use crate::{log, reaper};

/// Pause before restarting a service that exited, doubling up to the cap,
/// so a service that fails at once does not spin the guest's CPU.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(250);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Services {
    running: Mutex<HashMap<String, Arc<Mutex<i32>>>>,
    stopping: Arc<AtomicBool>,
}

impl Services {
    /// Starts the service unless it already runs; returns its current pid.
    pub fn start(
        &self,
        name: &str,
        argv: &[String],
        cwd: PathBuf,
        env: BTreeMap<String, String>,
    ) -> Result<Response, AgentError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(AgentError {
                kind: ErrorKind::ShuttingDown,
                message: "the agent is shutting down".into(),
            });
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pid) = running.get(name) {
            let pid = *pid.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(Response::ServiceStarted {
                entrypoint: name.into(),
                pid: pid as u32,
            });
        }
        if argv.is_empty() {
            return Err(AgentError {
                kind: ErrorKind::InvalidRequest,
                message: format!("command entrypoint `{name}` has an empty command"),
            });
        }
        let (pid, exited) = spawn(argv, &cwd, &env).map_err(|e| AgentError {
            kind: ErrorKind::SpawnFailed,
            message: format!("cannot start service `{name}` (`{}`): {e}", argv[0]),
        })?;
        let current = Arc::new(Mutex::new(pid));
        running.insert(name.to_string(), current.clone());
        log!("service {name} started (pid {pid})");
        let service = Supervised {
            name: name.to_string(),
            argv: argv.to_vec(),
            cwd,
            env,
            current,
            stopping: self.stopping.clone(),
        };
        thread::Builder::new()
            .name(format!("service-{name}"))
            .spawn(move || service.supervise(exited))
            .map_err(|e| AgentError {
                kind: ErrorKind::Io,
                message: format!("cannot start the supervisor thread: {e}"),
            })?;
        Ok(Response::ServiceStarted {
            entrypoint: name.into(),
            pid: pid as u32,
        })
    }

    /// Stops restarting services and sends every one's process group `signal`.
    pub fn signal_all(&self, signal: i32) {
        self.stopping.store(true, Ordering::SeqCst);
        for pid in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            reaper::kill_group(*pid.lock().unwrap_or_else(|p| p.into_inner()), signal);
        }
    }
}

struct Supervised {
    name: String,
    argv: Vec<String>,
    cwd: PathBuf,
    env: BTreeMap<String, String>,
    current: Arc<Mutex<i32>>,
    stopping: Arc<AtomicBool>,
}

impl Supervised {
    fn supervise(self, mut exited: Receiver<ProcessExit>) {
        let mut delay = FIRST_RESTART_DELAY;
        loop {
            let exit = exited
                .recv()
                .map(|e| e.to_string())
                .unwrap_or_else(|_| "ended".into());
            if self.stopping.load(Ordering::SeqCst) {
                log!("service {} stopped: {exit}", self.name);
                return;
            }
            log!("service {} {exit}; restarting in {delay:?}", self.name);
            thread::sleep(delay);
            delay = (delay * 2).min(MAX_RESTART_DELAY);
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            match spawn(&self.argv, &self.cwd, &self.env) {
                Ok((pid, next)) => {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = pid;
                    log!("service {} restarted (pid {pid})", self.name);
                    exited = next;
                }
                Err(e) => {
                    log!(
                        "service {} could not be restarted: {e}; giving up",
                        self.name
                    );
                    return;
                }
            }
        }
    }
}

fn spawn(
    argv: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> io::Result<(i32, Receiver<ProcessExit>)> {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(cwd);
    // Service output is the instance log.
    command
        .stdin(Stdio::null())
        .stdout(log::sink())
        .stderr(log::sink());
    reaper::new_session(&mut command);
    let (child, exited) = reaper::spawn(&mut command)?;
    Ok((child.id() as i32, exited))
}
