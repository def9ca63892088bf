//! Threads that carry requests, kept for reuse. Every request still gets a
//! thread of its own at once (a long exec never holds up a ping), but an
//! idle thread from an earlier request takes it instead of a new one:
//! creating a thread cost about 0.7 ms of an invoke under TCG, more than
//! the channel's whole round trip.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle thread waits for work before it exits.
const IDLE_LIFETIME: Duration = Duration::from_secs(60);
/// Idle threads kept at most; more exit when their request is done.
const MAX_IDLE: usize = 8;

#[derive(Clone)]
pub struct Workers {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job. A job is queued only when one of them
    /// is free to take it.
    idle: usize,
}

impl Workers {
    pub fn new() -> Workers {
        Workers {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Runs `job` on an idle thread, or a new one if none is idle.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let job: Job = Box::new(job);
        {
            let mut state = self.shared.lock();
            if state.idle > state.jobs.len() {
                state.jobs.push_back(job);
                self.shared.wake.notify_one();
                return Ok(());
            }
        }
        let shared = self.shared.clone();
        thread::Builder::new()
            .name("request".into())
            .spawn(move || shared.work(job))
            .map(drop)
    }

    /// Threads now waiting for work (for tests).
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.shared.lock().idle
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work(&self, first: Job) {
        let mut job = first;
        loop {
            job();
            let mut state = self.lock();
            if state.idle >= MAX_IDLE {
                return;
            }
            state.idle += 1;
            loop {
                if let Some(next) = state.jobs.pop_front() {
                    state.idle -= 1;
                    job = next;
                    break;
                }
                let (s, waited) = self
                    .wake
                    .wait_timeout(state, IDLE_LIFETIME)
                    .unwrap_or_else(|p| p.into_inner());
                state = s;
                if waited.timed_out() && state.jobs.is_empty() {
                    state.idle -= 1;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    fn wait_idle(workers: &Workers, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while workers.idle() != n {
            assert!(
                Instant::now() < deadline,
                "{} idle, not {n}",
                workers.idle()
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_finished_thread_takes_the_next_job() {
        let workers = Workers::new();
        let (tx, rx) = mpsc::channel();
        let t = tx.clone();
        workers
            .run(move || t.send(thread::current().id()).unwrap())
            .unwrap();
        let first = rx.recv().unwrap();
        wait_idle(&workers, 1);
        workers
            .run(move || tx.send(thread::current().id()).unwrap())
            .unwrap();
        assert_eq!(rx.recv().unwrap(), first, "the idle thread was reused");
    }

    #[test]
    fn a_busy_thread_never_holds_up_a_new_job() {
        let workers = Workers::new();
        let (release, held) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel();
        let d = done.clone();
        // Occupies the only thread until released.
        workers
            .run(move || {
                held.recv().unwrap();
                d.send("long").unwrap();
            })
            .unwrap();
        workers.run(move || done.send("short").unwrap()).unwrap();
        assert_eq!(
            finished.recv_timeout(Duration::from_secs(10)).unwrap(),
            "short",
            "ran while the first job was still running"
        );
        release.send(()).unwrap();
        assert_eq!(finished.recv().unwrap(), "long");
    }

    #[test]
    fn many_at_once_all_run_and_at_most_max_idle_stay() {
        let workers = Workers::new();
        let n = MAX_IDLE * 3;
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let (done, finished) = mpsc::channel();
        for i in 0..n {
            let (gate, done) = (gate.clone(), done.clone());
            workers
                .run(move || {
                    // Held until every job is submitted: none is idle then.
                    let _ = gate.lock().unwrap().recv();
                    done.send(i).unwrap();
                })
                .unwrap();
        }
        for _ in 0..n {
            release.send(()).unwrap();
        }
        let mut seen: Vec<usize> = (0..n).map(|_| finished.recv().unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        wait_idle(&workers, MAX_IDLE);
    }
}
