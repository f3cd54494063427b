//! Checks of the embedded store that need its insides: what the shared
//! dedup set shows while a batch is in flight, a panicking write job, and the
//! order of the open-time dedup rebuild.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use model::{Bucket, BucketAuth, BucketId, EventBody, InputId, NewEvent, Tenant, TenantId};
use tokio::sync::oneshot;

use super::*;
use crate::prelude::*;
use crate::TenantRecord;

struct Fixture {
    store: Arc<SqliteStore>,
    tenant: TenantId,
    bucket: BucketId,
    input: InputId,
}

impl Fixture {
    /// A store in `dir` with one tenant and one bucket (appends need no
    /// input row, only the bucket).
    async fn open(dir: &Path) -> Fixture {
        let store = Arc::new(SqliteStore::open(dir).expect("open"));
        let tenant: TenantId = "t".parse().expect("tenant id");
        let record = TenantRecord {
            tenant: Tenant {
                id: tenant.clone(),
                label: "t".into(),
                enabled: true,
                created_at: 0,
            },
            poll_secret_hash: None,
        };
        store.create_tenant(&record).await.expect("tenant");
        let bucket = Bucket {
            id: BucketId::generate(),
            tenant: tenant.clone(),
            name: "b".into(),
            auth: BucketAuth::None,
            ephemeral: false,
            retention_seconds: Bucket::DEFAULT_RETENTION_SECONDS,
            catchup_seconds: Bucket::DEFAULT_CATCHUP_SECONDS,
            enabled: true,
            created_at: 0,
        };
        store.create_bucket(&bucket).await.expect("bucket");
        Fixture {
            store,
            tenant,
            bucket: bucket.id,
            input: InputId::generate(),
        }
    }

    fn event(&self, delivery_id: &str, window_ms: i64) -> NewEvent {
        NewEvent {
            tenant: self.tenant.clone(),
            bucket: self.bucket.clone(),
            input: self.input,
            integration: None,
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            body: EventBody::Stored(b"{}".to_vec()),
            client_ip: "203.0.113.7".into(),
            delivery_id: Some(delivery_id.into()),
            event_type: None,
            event_count: 1,
            verified: false,
            marks: Default::default(),
            forwarded: None,
            dedup_window_ms: window_ms,
        }
    }

    fn seen(&self, delivery_id: &str) -> bool {
        let now = self.store.shared.clock.now();
        (self.store.shared.dedup).seen(&self.tenant, &self.input, delivery_id, now)
    }

    /// Runs a write job that tells `running` it started, then waits for
    /// `go` on the writer thread: while it waits, the writer is stuck in
    /// this job's batch.
    fn hold_writer(
        &self,
        before: impl FnOnce(&mut writer::WriteCx<'_>) -> Result<()> + Send + 'static,
    ) -> (
        oneshot::Receiver<()>,
        mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<()>>,
    ) {
        let (running, started) = oneshot::channel();
        let (go, wait) = mpsc::channel::<()>();
        let store = Arc::clone(&self.store);
        let job = tokio::spawn(async move {
            store
                .writer
                .call(super::writer::JobKind::Append, move |cx| {
                    before(cx)?;
                    let _ = running.send(());
                    let _ = wait.recv();
                    Ok(())
                })
                .await
        });
        (started, go, job)
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_id_is_seen_only_once_its_batch_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = Fixture::open(dir.path()).await;
    let event = f.event("mid-batch", 60_000);
    let keys = std::sync::Arc::clone(&f.store.keys);
    let (started, go, job) =
        f.hold_writer(move |cx| events::append(cx, &event, None, &keys).map(drop));
    started.await.expect("the job runs");
    assert!(
        !f.seen("mid-batch"),
        "an id is seen before its batch commits (it may still fail)"
    );
    go.send(()).expect("release the job");
    job.await.expect("task").expect("the batch commits");
    assert!(f.seen("mid-batch"));
    f.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_fails_its_batch_and_the_writer_lives_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = Fixture::open(dir.path()).await;
    let (started, go, holder) = f.hold_writer(|_| Ok(()));
    started.await.expect("the job runs");
    // Queued while the writer is held: the next batch is these two.
    let mate = {
        let (store, event) = (Arc::clone(&f.store), f.event("mate", 60_000));
        tokio::spawn(async move { store.append(event).await })
    };
    let panicking = {
        let store = Arc::clone(&f.store);
        tokio::spawn(async move {
            store
                .writer
                .call(super::writer::JobKind::Append, |_| -> Result<()> {
                    panic!("a bug in a write job")
                })
                .await
        })
    };
    wait_until("both jobs are queued", || f.store.pending_writes() == 2).await;
    go.send(()).expect("release the writer");
    holder.await.expect("task").expect("the held batch commits");
    let mate = mate.await.expect("task");
    assert!(matches!(mate, Err(Error::Unavailable(_))), "{mate:?}");
    let panicked = panicking.await.expect("the caller does not panic");
    assert!(
        matches!(panicked, Err(Error::Unavailable(_))),
        "{panicked:?}"
    );
    assert!(!f.seen("mate"));
    assert_eq!(f.store.shared.floor.load(Ordering::SeqCst), i64::MAX);

    f.store
        .append(f.event("mate", 60_000))
        .await
        .expect("the writer still works, and the retry is accepted");
    assert!(f.seen("mate"));
    f.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebuilt_dedup_set_purges_oldest_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = Fixture::open(dir.path()).await;
    let older = f
        .store
        .append(f.event("older", 60_000))
        .await
        .expect("append");
    f.store
        .append(f.event("newer", 120_000))
        .await
        .expect("append");
    f.store.close().await;
    drop(f);

    let store = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(store.shared.dedup.len(), 2, "both ids are rebuilt");
    // The older id has expired, the newer not: purging walks each tenant's
    // queue from the front, so the older one must come first.
    assert_eq!(store.shared.dedup.purge(older.received_at + 60_000), 1);
    assert_eq!(store.shared.dedup.len(), 1);
    store.close().await;
}
