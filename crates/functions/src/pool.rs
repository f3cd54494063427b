//! The dedicated threads functions run on, off the async reactor: one warm
//! VM each, each fed from its own bounded queue. A call goes to the first
//! thread not already busy with a few calls; the caller awaits its outcome
//! on a oneshot channel; a full queue answers at once rather than queueing
//! without bound.
//!
//! One queue per thread rather than one shared queue: with a shared
//! `Mutex<Receiver>`, every call woke two threads (the one that took it,
//! then the next one waiting for the lock), and those wake-ups were a
//! large part of a call's cost (README, Functions, "Cost").

use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::vm::Vm;
use crate::{Call, Limits, Outcome, Request, Script};

/// Calls waiting per thread before `run` refuses: at 100 ms a call, a
/// full queue is at most 3.2 s of work, beyond any sender's patience.
const QUEUE_PER_THREAD: usize = 32;

/// Calls a thread takes (running and queued) before the next thread gets
/// one.
const SPREAD_AT: usize = 4;

struct Job {
    script: Script,
    call: Call,
    reply: oneshot::Sender<Outcome>,
}

/// One function thread's side of the pool.
struct Worker {
    queue: SyncSender<Box<Job>>,
    /// Calls sent to it and not yet finished (queued or running).
    load: Arc<AtomicUsize>,
}

/// The function threads. Dropping the pool stops them once the calls
/// already queued have run (each at most its time limit).
pub struct Pool {
    workers: Vec<Worker>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` threads (at least one), each with its own VM.
    pub fn new(threads: usize, limits: Limits) -> Pool {
        let (workers, threads) = (0..threads.max(1))
            .map(|i| {
                let (tx, rx) = sync_channel::<Box<Job>>(QUEUE_PER_THREAD);
                let load = Arc::new(AtomicUsize::new(0));
                let counted = load.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("function-{i}"))
                    .spawn(move || work(&rx, &counted, limits))
                    .expect("spawning a thread at startup");
                (Worker { queue: tx, load }, thread)
            })
            .unzip();
        Pool { workers, threads }
    }

    /// A pool with one thread per core, the usual size.
    pub fn per_core(limits: Limits) -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool::new(cores, limits)
    }

    /// Runs `script` on `call` on a pool thread and answers its outcome.
    /// Never fails: a full queue or a lost thread is an outcome with an
    /// error and the request unchanged.
    pub async fn run(&self, script: &Script, call: Call) -> Outcome {
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            script: script.clone(),
            call,
            reply,
        });
        let refused = |job: Box<Job>, why: &str| {
            Outcome::failed(job.call.request, Vec::new(), why.into(), started.elapsed())
        };
        // The first thread with fewer than `SPREAD_AT` calls, else the
        // least loaded: calls bunch up on the first threads, which then
        // run them back to back instead of each thread sleeping and being
        // woken for every call, while a thread stuck in a slow call holds
        // up at most `SPREAD_AT - 1` others.
        let load = |w: &&Worker| w.load.load(Ordering::Relaxed);
        let Some(worker) = self
            .workers
            .iter()
            .find(|w| load(w) < SPREAD_AT)
            .or_else(|| self.workers.iter().min_by_key(load))
        else {
            return refused(job, "the function pool is stopped");
        };
        worker.load.fetch_add(1, Ordering::Relaxed);
        match worker.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                worker.load.fetch_sub(1, Ordering::Relaxed);
                return refused(job, "the function pool is busy");
            }
            Err(TrySendError::Disconnected(job)) => {
                worker.load.fetch_sub(1, Ordering::Relaxed);
                return refused(job, "the function pool is stopped");
            }
        }
        // The thread always answers (it keeps the request through a panic).
        answer.await.unwrap_or_else(|_| {
            Outcome::failed(
                Request::default(),
                Vec::new(),
                "the function thread stopped".into(),
                started.elapsed(),
            )
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.workers.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One thread: builds its VM, then runs jobs until its queue closes. A
/// call that panics (a bug, never a script's doing) answers a failure with
/// the request unchanged, and the VM is rebuilt so no half-done state
/// survives it.
fn work(rx: &Receiver<Box<Job>>, load: &AtomicUsize, limits: Limits) {
    let mut vm: Option<Vm> = None;
    while let Ok(job) = rx.recv() {
        let Job {
            script,
            call,
            reply,
        } = *job;
        let outcome = run_one(&mut vm, &script, call, limits);
        // Before the reply, so the caller's next call sees this thread free.
        load.fetch_sub(1, Ordering::Relaxed);
        let _ = reply.send(outcome);
    }
}

fn run_one(vm: &mut Option<Vm>, script: &Script, call: Call, limits: Limits) -> Outcome {
    if vm.is_none() {
        *vm = Vm::new(limits).ok();
    }
    let Some(current) = vm.as_mut() else {
        let error = "the function VM could not start".to_owned();
        return Outcome::failed(call.request, Vec::new(), error, Default::default());
    };
    let Call {
        request,
        metadata,
        config,
        attachment,
    } = call;
    // Shared with the VM so that a panic still gives the request back.
    let original = Rc::new(request);
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        current.run(script, original.clone(), metadata, config, attachment)
    }));
    ran.unwrap_or_else(|_| {
        *vm = None;
        let error = "the function thread failed (a bug: the VM is rebuilt)".to_owned();
        Outcome::failed((*original).clone(), Vec::new(), error, Default::default())
    })
}
