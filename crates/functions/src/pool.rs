//! The dedicated threads functions run on, off the async reactor: one warm
//! VM each, fed from one bounded queue. A caller awaits its outcome on a
//! oneshot channel; a full queue answers at once rather than queueing
//! without bound.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::vm::Vm;
use crate::{Call, Limits, Outcome, Script};

/// Calls waiting per thread before `run` refuses: at 100 ms a call, a
/// full queue is at most 3.2 s of work, beyond any sender's patience.
const QUEUE_PER_THREAD: usize = 32;

struct Job {
    script: Script,
    call: Call,
    reply: oneshot::Sender<Outcome>,
}

/// The function threads. Dropping the pool stops them once the calls
/// already queued have run (each at most its time limit).
pub struct Pool {
    queue: Option<SyncSender<Box<Job>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` threads (at least one), each with its own VM.
    pub fn new(threads: usize, limits: Limits) -> Pool {
        let threads = threads.max(1);
        let (tx, rx) = sync_channel::<Box<Job>>(threads * QUEUE_PER_THREAD);
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..threads)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("function-{i}"))
                    .spawn(move || work(&rx, limits))
                    .expect("spawning a thread at startup")
            })
            .collect();
        Pool {
            queue: Some(tx),
            threads,
        }
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
        let original = call.request.clone();
        let job = Box::new(Job {
            script: script.clone(),
            call,
            reply,
        });
        let refused = |why: &str| {
            Outcome::failed(original.clone(), Vec::new(), why.into(), started.elapsed())
        };
        match self.queue.as_ref().map(|q| q.try_send(job)) {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_))) => return refused("the function pool is busy"),
            _ => return refused("the function pool is stopped"),
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => refused("the function thread stopped"),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One thread: builds its VM, then runs jobs until the queue closes. A
/// call that panics (a bug, never a script's doing) answers nothing, and
/// the VM is rebuilt so no half-done state survives it.
fn work(rx: &Mutex<Receiver<Box<Job>>>, limits: Limits) {
    let mut vm: Option<Vm> = None;
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if vm.is_none() {
            vm = Vm::new(limits).ok();
        }
        let Some(current) = vm.as_mut() else {
            let error = "the function VM could not start".to_owned();
            let _ = job.reply.send(Outcome::failed(
                job.call.request,
                Vec::new(),
                error,
                Default::default(),
            ));
            continue;
        };
        let Job {
            script,
            call,
            reply,
        } = *job;
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| current.run(&script, call)));
        match ran {
            Ok(outcome) => {
                let _ = reply.send(outcome);
            }
            Err(_) => vm = None,
        }
    }
}
