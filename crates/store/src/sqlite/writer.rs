//! The group-commit writer: one std thread owns the only write connection;
//! every write (appends and admin writes alike) is a job on a bounded queue.
//!
//! The thread blocks for one job, drains whatever else is queued (up to
//! [`MAX_BATCH`]), runs the lot in one transaction, commits once (one fsync
//! for the whole batch with `synchronous=FULL`), then answers every job.
//! Under load a commit carries hundreds of appends, which is what makes
//! tens of thousands of durable appends per second possible on a small
//! machine.
//!
//! A failing job must not take its batch down, so each admin job runs in a
//! SAVEPOINT that rolls back alone. Appends run without one: the savepoint
//! and its sub-journal cost 7 to 20 % of ingest throughput. An append
//! instead refuses (duplicate delivery id, unknown bucket) before its first
//! write, and a failure after that, or a panic in any job, rolls the whole
//! batch back and answers every job of it `Unavailable`. Delivery ids the
//! batch accepted are kept in a batch-local set and reach the shared dedup
//! set only after COMMIT.
//!
//! Also here: the store's clock, the event id mint and the visibility floor,
//! all of which must be driven from this one thread to keep their promises.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

use model::EventId;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};
use ulid::Ulid;

use super::rows::db_err;
use crate::dedup::Pending;
use crate::{DedupSet, Error, Result};

/// Jobs waiting for the writer. Beyond this, callers wait for room
/// (backpressure) rather than queueing without bound.
const QUEUE_CAPACITY: usize = 4096;
/// Most jobs in one transaction: big enough to amortise an fsync over
/// hundreds of appends, small enough to keep one commit's latency and WAL
/// growth modest.
const MAX_BATCH: usize = 1024;

/// A non-decreasing millisecond clock shared by readers and the writer.
///
/// The system clock may step backwards (NTP); ids and `received_at` must
/// not, and the visibility argument needs one monotonic timeline.
#[derive(Debug)]
pub(super) struct Clock {
    last: AtomicI64,
}

impl Clock {
    pub(super) fn starting_at(ms: i64) -> Self {
        Self {
            last: AtomicI64::new(ms),
        }
    }

    /// `max(system ms, the latest time this clock ever returned)`.
    pub(super) fn now(&self) -> i64 {
        let system = crate::clock::now_ms();
        self.last.fetch_max(system, Ordering::SeqCst).max(system)
    }

    fn advance_to(&self, ms: i64) {
        self.last.fetch_max(ms, Ordering::SeqCst);
    }
}

/// Mints event ids whose time part is the event's `received_at`, strictly
/// increasing even within one millisecond, and across restarts once seeded
/// with the newest stored id.
pub(super) struct IdMint {
    last: Ulid,
}

impl IdMint {
    pub(super) fn after(last: Option<EventId>) -> Self {
        Self {
            last: last.map_or(Ulid::nil(), |id| id.ulid()),
        }
    }

    /// The next id and its `received_at`.
    pub(super) fn next(&mut self, clock: &Clock) -> (EventId, i64) {
        let ms = clock.now();
        let last_ms = i64::try_from(self.last.timestamp_ms()).unwrap_or(i64::MAX);
        let next = if ms > last_ms {
            Ulid::from_datetime(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
        } else if let Some(next) = self.last.increment() {
            next
        } else {
            // 2^80 ids in one millisecond: move into the next one and make
            // the clock follow, so received_at stays equal to the id's time.
            let bumped = last_ms + 1;
            clock.advance_to(bumped);
            Ulid::from_parts(bumped as u64, 0)
        };
        self.last = next;
        let at = i64::try_from(next.timestamp_ms()).unwrap_or(i64::MAX);
        (EventId::from_ulid(next), at)
    }
}

/// State shared between the writer thread and the store's callers.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) clock: Clock,
    /// While a batch with appends is in flight: a time at or below every
    /// `received_at` that batch assigns. Otherwise `i64::MAX`.
    pub(super) floor: AtomicI64,
    /// Ticks after each commit that stored events.
    pub(super) commits: watch::Sender<u64>,
    /// Successful COMMITs, for tests and metrics.
    pub(super) commit_count: AtomicU64,
    /// Committed live delivery ids. Only the writer thread checks and adds
    /// (after COMMIT), so check-then-insert is atomic across appends.
    pub(super) dedup: DedupSet,
}

/// What a job sees while it runs (inside the batch's transaction, and its
/// own savepoint unless it is an append).
pub(super) struct WriteCx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) ids: &'a mut IdMint,
    pub(super) clock: &'a Clock,
    pub(super) dedup: &'a DedupSet,
    /// Delivery ids accepted by this batch so far: checked together with
    /// `dedup`, published to it only if the batch commits.
    pub(super) pending: &'a mut Pending,
    /// Set by a job without a savepoint (an append) before its first write:
    /// if it then fails, only rolling back the whole batch undoes it.
    pub(super) wrote: bool,
}

/// What a write job is, which decides how its batch commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobKind {
    /// Stores events: sets the visibility floor, ticks `commits`, fsyncs.
    Append,
    /// Any other write a caller is told is done (admin objects, resends):
    /// fsynced before the answer.
    Durable,
    /// Delivery bookkeeping (in-flight marks, settlements): committed
    /// like the rest but not fsynced by itself (`synchronous=NORMAL`).
    /// The next durable commit fsyncs it with its own; a machine crash
    /// before that loses at most a settlement, and the delivery is made
    /// again (at-least-once), which a process crash never causes.
    Bookkeeping,
}

/// A write job, type-erased so appends and admin writes share one queue.
trait Work: Send {
    fn kind(&self) -> JobKind;
    /// Whether this job stores events (decides the floor and the tick).
    fn appends(&self) -> bool {
        self.kind() == JobKind::Append
    }
    /// Runs the job; `false` means it failed, which rolls back its
    /// savepoint, or, for an append that already wrote, the whole batch.
    fn run(&mut self, cx: &mut WriteCx<'_>) -> bool;
    /// Answers the caller: its own result if the batch committed, else
    /// `Unavailable` with the commit's failure.
    fn finish(self: Box<Self>, commit: Result<(), &str>);
}

struct Task<T, F> {
    kind: JobKind,
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Work for Task<T, F>
where
    T: Send,
    F: FnOnce(&mut WriteCx<'_>) -> Result<T> + Send,
{
    fn kind(&self) -> JobKind {
        self.kind
    }

    fn run(&mut self, cx: &mut WriteCx<'_>) -> bool {
        let result = match self.work.take() {
            Some(work) => work(cx),
            None => Err(Error::Unavailable("write job ran twice".into())),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &str>) {
        let answer = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(Error::Unavailable("write job did not run".into())),
            (Err(why), _) => Err(Error::Unavailable(why.to_owned())),
        };
        // The caller may have gone away (request cancelled); the write
        // stands either way.
        let _ = self.reply.send(answer);
    }
}

enum Job {
    Run(Box<dyn Work>),
    /// Stop accepting; finish what is queued; end the thread.
    Close,
}

fn closed() -> Error {
    Error::Unavailable("store is closed".into())
}

/// The callers' side of the writer.
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(
        conn: Connection,
        ids: IdMint,
        shared: std::sync::Arc<Shared>,
    ) -> Result<Self> {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        // The thread reads `clock::now_ms` (every `receivedAt`) through the
        // opener's runtime, so a test that pauses that runtime's clock
        // moves the store's time with the server's.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name("hookrelay-sqlite-writer".into())
            .spawn(move || {
                let _clock = runtime.as_ref().map(tokio::runtime::Handle::enter);
                Thread {
                    conn,
                    ids,
                    shared,
                    pending: Pending::default(),
                    fsyncs: true,
                }
                .run(jobs)
            })
            .map_err(|e| Error::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            queue,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Jobs waiting in the queue for the writer thread.
    pub(super) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Runs `work` in the next batch and answers once that batch committed.
    pub(super) async fn call<T, F>(&self, kind: JobKind, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCx<'_>) -> Result<T> + Send + 'static,
    {
        if self.is_closed() {
            return Err(closed());
        }
        let (reply, answer) = oneshot::channel();
        let task = Task {
            kind,
            work: Some(work),
            result: None,
            reply,
        };
        self.queue
            .send(Job::Run(Box::new(task)))
            .await
            .map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the writer stopped before answering".into()))?
    }

    /// Refuses new jobs, lets the thread finish the queued ones and waits
    /// for it to end.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Fails only if the thread is already gone, which is the goal.
        let _ = self.queue.send(Job::Close).await;
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            if let Ok(Err(_)) = tokio::task::spawn_blocking(move || thread.join()).await {
                tracing::error!("the sqlite writer thread panicked");
            }
        }
    }
}

/// The writer thread's own state.
struct Thread {
    conn: Connection,
    ids: IdMint,
    shared: std::sync::Arc<Shared>,
    /// Delivery ids accepted by the batch in flight, not yet committed.
    pending: Pending,
    /// Whether the connection is at `synchronous=FULL` (else NORMAL).
    fsyncs: bool,
}

impl Thread {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut batch: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_BATCH);
        let mut closing = false;
        while let Some(first) = jobs.blocking_recv() {
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Run(work) => batch.push(work),
                    Job::Close => closing = true,
                }
                if batch.len() < MAX_BATCH {
                    next = jobs.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            if closing {
                // Later sends fail; what is already queued still drains
                // through blocking_recv, which then returns None.
                jobs.close();
            }
        }
        // The write connection closes when `self` drops here. It would
        // checkpoint and remove the WAL only as the last connection to the
        // file, but the store's read connections are normally still open
        // (until the store is dropped), and they, being read-only, never
        // checkpoint. So the WAL stays until a later read-write connection
        // closes last, and the next open reads it. Nothing depends on the
        // checkpoint: every commit is already durable in the WAL.
    }

    /// Runs one batch as one transaction and answers every job of it.
    fn commit(&mut self, batch: &mut Vec<Box<dyn Work>>) {
        let appends = batch.iter().any(|w| w.appends());
        if appends {
            // Visibility: publish the floor BEFORE any received_at of this
            // batch is assigned. Every received_at below is >= this value
            // (same monotonic clock, read later). A reader of
            // `visible_before` reads the clock first and the floor second,
            // so either it sees this floor (and stays at or below every
            // received_at of the batch), or it read the floor before we
            // stored it, hence read the clock before we assign any
            // received_at, which therefore is >= its answer. Either way no
            // event of this batch is below a `visible_before` taken before
            // the batch commits.
            let now = self.shared.clock.now();
            self.shared.floor.store(now, Ordering::SeqCst);
        }
        let outcome = self.transaction(batch);
        if outcome.is_ok() {
            self.shared.commit_count.fetch_add(1, Ordering::SeqCst);
            // Before any job is answered, so an accepted id is seen by the
            // time its sender hears back.
            self.shared.dedup.publish(&mut self.pending);
        } else {
            // Nothing of the batch is stored, so none of its ids may block
            // the sender's retry.
            self.pending.clear();
        }
        if appends {
            // Committed (or abandoned): nothing of this batch is pending.
            self.shared.floor.store(i64::MAX, Ordering::SeqCst);
        }
        if let Ok(true) = outcome {
            self.shared.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        let failure = outcome.as_ref().err().map(String::as_str);
        for work in batch.drain(..) {
            work.finish(failure.map_or(Ok(()), Err));
        }
    }

    /// `Ok(stored_events)` if COMMIT succeeded, else why nothing was.
    fn transaction(&mut self, batch: &mut [Box<dyn Work>]) -> Result<bool, String> {
        let result = self.try_transaction(batch);
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if let Err(why) = &result {
            tracing::error!(error = %why, jobs = batch.len(), "sqlite batch failed");
        }
        result
    }

    fn try_transaction(&mut self, batch: &mut [Box<dyn Work>]) -> Result<bool, String> {
        let exec = |conn: &Connection, sql: &str| -> Result<(), String> {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute([]))
                .map(drop)
                .map_err(|e| db_err(e).to_string())
        };
        // A batch of bookkeeping alone skips the fsync; the first durable
        // batch after it fsyncs both (one WAL, written in order).
        let fsync = batch.iter().any(|w| w.kind() != JobKind::Bookkeeping);
        if fsync != self.fsyncs {
            let level = if fsync { "FULL" } else { "NORMAL" };
            self.conn
                .pragma_update(None, "synchronous", level)
                .map_err(|e| db_err(e).to_string())?;
            self.fsyncs = fsync;
        }
        exec(&self.conn, "BEGIN IMMEDIATE")?;
        let mut stored_events = false;
        for work in batch.iter_mut() {
            // Appends run without a savepoint: SAVEPOINT/RELEASE and the
            // sub-journal cost 7 to 20 % of ingest throughput in the bench
            // (29k/s → 35k/s at 128 connections without them). An append
            // refuses (duplicate, unknown bucket) before it writes, and a
            // failure after its first write fails the whole batch below.
            let savepoint = !work.appends();
            if savepoint {
                exec(&self.conn, "SAVEPOINT job")?;
            }
            let mut cx = WriteCx {
                conn: &self.conn,
                ids: &mut self.ids,
                clock: &self.shared.clock,
                dedup: &self.shared.dedup,
                pending: &mut self.pending,
                wrote: false,
            };
            // A panicking job may have written anything before it stopped,
            // and its savepoint (if any) is still open: only rolling the
            // whole batch back is safe. The thread lives on for the next.
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| work.run(&mut cx)));
            let Ok(ok) = ran else {
                return Err("a write job panicked; the batch is rolled back".into());
            };
            let wrote_then_failed = !ok && cx.wrote;
            // I/O errors, a full disk or OOM may make SQLite roll the whole
            // transaction back on its own; carrying on would run the rest
            // of the batch in autocommit mode, outside the group commit.
            if self.conn.is_autocommit() {
                return Err("the transaction was rolled back by SQLite".into());
            }
            if ok {
                stored_events |= work.appends();
            } else if savepoint {
                exec(&self.conn, "ROLLBACK TO job")?;
            } else if wrote_then_failed {
                return Err("an append failed after writing; the batch is rolled back".into());
            }
            if savepoint {
                exec(&self.conn, "RELEASE job")?;
            }
        }
        exec(&self.conn, "COMMIT")?;
        Ok(stored_events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_strictly_and_carry_received_at() {
        let clock = Clock::starting_at(0);
        let mut mint = IdMint::after(None);
        let mut last = None;
        for _ in 0..10_000 {
            let (id, at) = mint.next(&clock);
            assert_eq!(id.ulid().timestamp_ms() as i64, at);
            assert!(last < Some(id));
            last = Some(id);
        }
    }

    #[test]
    fn a_seeded_mint_continues_after_a_future_id() {
        // A stored id ahead of the system clock (clock stepped back since).
        let ahead = crate::clock::now_ms() + 60_000;
        let stored = EventId::from_ulid(Ulid::from_parts(ahead as u64, u128::MAX >> 48));
        let clock = Clock::starting_at(ahead);
        let mut mint = IdMint::after(Some(stored));
        let (next, at) = mint.next(&clock);
        assert!(next > stored);
        assert_eq!(
            at,
            ahead + 1,
            "overflowing the random part moves to the next ms"
        );
        assert!(clock.now() >= at);
    }

    #[test]
    fn the_clock_never_goes_back() {
        let clock = Clock::starting_at(i64::MAX - 1);
        assert_eq!(clock.now(), i64::MAX - 1);
    }
}
