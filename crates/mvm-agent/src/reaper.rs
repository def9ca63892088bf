//! One thread reaps every child. The agent is PID 1 (or a child subreaper in
//! dev mode), so orphans of user commands are re-parented to it and must be
//! collected; a `waitpid(-1)` loop would steal the statuses `Child::wait`
//! expects, so instead every spawn registers its pid here and receives the
//! status on a channel.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard};
use std::thread;

use mvm_proto::ProcessExit;

static WAITING: Mutex<Option<HashMap<i32, Sender<ProcessExit>>>> = Mutex::new(None);

fn waiting() -> MutexGuard<'static, Option<HashMap<i32, Sender<ProcessExit>>>> {
    WAITING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Blocks SIGCHLD in the calling thread and starts the reaping thread.
/// Must run on the main thread before any other thread exists, so every
/// thread inherits the blocked mask and only `sigwait` sees the signal.
/// (std resets the mask in spawned children.)
pub fn start() -> io::Result<()> {
    // SAFETY: plain libc signal-mask calls on a local, initialised sigset.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        set
    };
    *waiting() = Some(HashMap::new());
    thread::Builder::new()
        .name("reaper".into())
        .spawn(move || reap_forever(set))?;
    Ok(())
}

/// Spawns `command` and returns it with the channel its exit arrives on.
/// Never call `wait` on the returned child.
pub fn spawn(command: &mut Command) -> io::Result<(Child, Receiver<ProcessExit>)> {
    // Holding the lock across the spawn means the reaper cannot collect the
    // child before its pid is registered.
    let mut guard = waiting();
    let child = command.spawn()?;
    let (tx, rx) = mpsc::channel();
    guard
        .get_or_insert_with(HashMap::new)
        .insert(child.id() as i32, tx);
    Ok((child, rx))
}

fn reap_forever(set: libc::sigset_t) {
    loop {
        reap_ready();
        let mut signal = 0;
        // SAFETY: `set` is a valid sigset; `signal` is a valid out pointer.
        unsafe { libc::sigwait(&set, &mut signal) };
    }
}

/// Collects every child that has exited, delivering statuses to whoever
/// spawned them; orphans are simply discarded.
///
/// Each zombie is first only looked at (`WNOWAIT`) and then reaped under
/// the lock `spawn` holds: when an exec fails, std reaps the failed child
/// itself inside `spawn`, and reaping it first would make std panic.
fn reap_ready() {
    loop {
        // SAFETY: an all-zero siginfo_t is valid; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer; WNOWAIT leaves the zombie in place.
        let rc = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is meaningful for the SIGCHLD-style info waitid returns.
        let pid = unsafe { info.si_pid() };
        if rc != 0 || pid == 0 {
            return;
        }
        let mut guard = waiting();
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer. It may find nothing
        // if std reaped the child meanwhile; that is fine.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid;
        if reaped && let Some(tx) = guard.as_mut().and_then(|m| m.remove(&pid)) {
            let _ = tx.send(exit_from_status(status, false));
        }
    }
}

pub fn exit_from_status(status: i32, timed_out: bool) -> ProcessExit {
    if libc::WIFEXITED(status) {
        ProcessExit {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
            timed_out,
        }
    } else if libc::WIFSIGNALED(status) {
        ProcessExit {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
            timed_out,
        }
    } else {
        ProcessExit {
            code: None,
            signal: None,
            timed_out,
        }
    }
}

/// Kills a whole process group; a group that is already gone is fine.
pub fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid targets the group.
    unsafe { libc::kill(-pgid, signal) };
}

/// Makes the agent the reaper of its descendants' orphans when it is not
/// PID 1 (dev mode), so process trees behave as in the guest.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets up a child to lead its own session and process group, so a timeout
/// or shutdown can kill everything it started with one signal.
pub fn new_session(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
    }
}
