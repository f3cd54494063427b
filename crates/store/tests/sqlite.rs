//! The SQLite store against the shared conformance suite, plus what only an
//! embedded store can show: persistence across reopen, group commit, a
//! failing batch, and ephemeral payloads never reaching the file.
//!
//! Needs the `test-suite` feature: `cargo test -p store --features test-suite`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use model::{EventBody, NewEvent, TokenScope};
use store::conformance::{self, bucket_in, event_for, input_in, token_in, World};
use store::sqlite::SqliteStore;
use store::{Appended, Cursor, Error, EventQuery, Store};

fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(dir.path()).expect("open the store"))
}

fn everything() -> EventQuery {
    EventQuery {
        from: Cursor::Start,
        buckets: Vec::new(),
        limit: 10_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    conformance::run_all(open(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_the_data_dir_and_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("a/b");
    let store = SqliteStore::open(&nested).expect("open");
    assert!(nested.join(store::sqlite::FILE_NAME).is_file());
    store.ping().await.expect("ping");
    store.close().await;
    assert!(matches!(store.ping().await, Err(Error::Unavailable(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_finds_objects_and_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let dyn_store: Arc<dyn Store> = store.clone();
    let w = World::create(&dyn_store, "persist").await;
    let token = token_in(&w.tenant, TokenScope::Admin);
    store.create_token(&token).await.expect("create token");
    let mut e = w.event();
    e.delivery_id = Some("d-1".into());
    let first = store.append(e.clone()).await.expect("append");
    store.close().await;
    drop(store);

    let store = open(&dir);
    assert_eq!(
        store
            .bucket(&w.tenant, &w.bucket.id)
            .await
            .expect("bucket")
            .name,
        "main"
    );
    assert_eq!(
        store.input_by_id(&w.input.id).await.expect("input").tenant,
        w.tenant
    );
    assert_eq!(
        store
            .list_outputs(&w.tenant, &w.bucket.id)
            .await
            .expect("outputs")
            .len(),
        2
    );
    let read = store.token_by_key(&token.key).await.expect("token");
    assert_eq!(read.secret_hash.expose(), token.secret_hash.expose());
    assert!(store.has_admin_token().await.expect("admin token"));
    let (event, deliveries) = store.event(&w.tenant, &first.id).await.expect("event");
    assert_eq!(
        (event.received_at, deliveries.len()),
        (first.received_at, 2)
    );
    assert!(
        matches!(store.append(e).await, Err(Error::Duplicate)),
        "dedup survives a restart"
    );

    let second = store.append(w.event()).await.expect("append after reopen");
    assert!(second.id > first.id, "ids keep increasing across a restart");
    let ids: Vec<_> = store
        .events(&w.tenant, &everything())
        .await
        .expect("events")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [first.id, second.id]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    const APPENDS: usize = 2000;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let dyn_store: Arc<dyn Store> = store.clone();
    let w = World::create(&dyn_store, "group-commit").await;
    let before = store.commit_count();
    let tasks: Vec<_> = (0..APPENDS)
        .map(|_| {
            let (store, event) = (store.clone(), w.event());
            tokio::spawn(async move { store.append(event).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    let commits = store.commit_count() - before;
    eprintln!("{APPENDS} concurrent appends took {commits} commits");
    assert!(
        commits as usize <= APPENDS / 4,
        "{commits} commits for {APPENDS} appends"
    );
    let stored = store
        .events(&w.tenant, &everything())
        .await
        .expect("events");
    assert_eq!(stored.len(), APPENDS);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_refused_alone_within_its_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let dyn_store: Arc<dyn Store> = store.clone();
    let w = World::create(&dyn_store, "batch-dup").await;
    let mut same = w.event();
    same.delivery_id = Some("same".into());
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            let event = if i % 2 == 0 { same.clone() } else { w.event() };
            tokio::spawn(async move { store.append(event).await })
        })
        .collect();
    let (mut ok, mut duplicates) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(Error::Duplicate) => duplicates += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, duplicates), (51, 49));
    assert_eq!(
        store
            .events(&w.tenant, &everything())
            .await
            .expect("events")
            .len(),
        51
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_bucket_never_writes_its_payload() {
    const MARKER: &str = "never-on-disk-7f3a9c";
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let dyn_store: Arc<dyn Store> = store.clone();
    let w = World::create(&dyn_store, "fleeting").await;
    let mut bucket = bucket_in(&w.tenant, "fleeting");
    bucket.ephemeral = true;
    store.create_bucket(&bucket).await.expect("bucket");
    let input = input_in(&bucket, None);
    store.create_input(&input).await.expect("input");
    // Even if a caller forgets to omit the payload, the store drops it.
    let mut e = event_for(&input);
    e.body = EventBody::Stored(MARKER.as_bytes().to_vec());
    e.query = format!("q={MARKER}");
    e.headers = vec![("x-marker".into(), MARKER.into())];
    let a = store.append(e).await.expect("append");
    let (read, _) = store.event(&w.tenant, &a.id).await.expect("read");
    assert_eq!(
        read.body,
        EventBody::Omitted {
            size: MARKER.len() as u64
        }
    );
    assert_eq!((read.query, read.headers), (None, None));
    store.close().await;
    for entry in std::fs::read_dir(dir.path()).expect("list dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read file");
        let found = bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes());
        assert!(!found, "the payload reached the disk");
    }
}

type Answer<'a> = Pin<Box<dyn Future<Output = store::Result<Appended>> + Send + 'a>>;

/// Starts an append and polls it once, which queues its job (the queue has
/// room and `unconstrained` lifts tokio's budget), so appends started one
/// after another reach the writer in that order.
async fn queue_append(store: &SqliteStore, event: NewEvent) -> Answer<'_> {
    let mut answer = store.append(event);
    let first = tokio::task::unconstrained(std::future::poll_fn(|cx| {
        Poll::Ready(answer.as_mut().poll(cx))
    }))
    .await;
    match first {
        Poll::Pending => answer,
        Poll::Ready(done) => Box::pin(std::future::ready(done)),
    }
}

/// Yields until `cond` holds, failing after a few seconds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
    }
}

/// One append failing after its first write fails its whole batch: every
/// job of it answers `Unavailable`, nothing of it is stored, none of its
/// delivery ids is seen, and each can be retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_stores_nothing_and_records_no_delivery_id() {
    const JOBS: usize = 100;
    const BOOM: usize = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let dyn_store: Arc<dyn Store> = store.clone();
    let w = World::create(&dyn_store, "batch-fail").await;
    let side = rusqlite::Connection::open(dir.path().join(store::sqlite::FILE_NAME))
        .expect("side connection");
    side.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    // On deliveries, not events: the /boom append has written its event row
    // when it fails, which is what only a whole-batch rollback undoes.
    side.execute_batch(
        "CREATE TRIGGER boom BEFORE INSERT ON deliveries
         WHEN (SELECT path FROM events WHERE tenant = NEW.tenant AND id = NEW.event_id) = '/boom'
         BEGIN SELECT RAISE(ABORT, 'boom'); END",
    )
    .expect("create trigger");
    let event = |i: usize| {
        let mut e = w.event();
        e.delivery_id = Some(format!("d-{i}"));
        if i == BOOM {
            e.path = "/boom".into();
        }
        e
    };

    // Holding the write lock stalls the writer in the BEGIN of the batch
    // that takes `plug`; the jobs queued meanwhile are the next batch.
    side.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let mut plug = w.event();
    plug.delivery_id = Some("plug".into());
    let plug = queue_append(&store, plug).await;
    wait_until("the writer takes the plug", || store.pending_writes() == 0).await;
    let mut answers = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        answers.push(queue_append(&store, event(i)).await);
    }
    // Almost always all of them; should the writer have drained a few
    // (the first ones) into the plug's batch, they are known too.
    let queued = store.pending_writes();
    let in_first_batch = |i: usize| i < JOBS - queued;
    side.execute_batch("COMMIT")
        .expect("release the write lock");

    let plug = plug.await;
    let mut results = Vec::with_capacity(JOBS);
    for answer in answers {
        results.push(answer.await);
    }
    let failed_first = in_first_batch(BOOM);
    assert_eq!(plug.is_ok(), !failed_first, "plug: {plug:?}");
    let now = conformance::now();
    let seen = |i: usize| {
        let id = format!("d-{i}");
        let store = store.clone();
        let (t, input) = (w.tenant.clone(), w.input.id);
        async move {
            store
                .delivery_seen(&t, &input, &id, now)
                .await
                .expect("seen")
        }
    };
    let mut stored = Vec::new();
    let mut failed = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let in_failed_batch = in_first_batch(i) == failed_first;
        match result {
            Ok(a) if !in_failed_batch => {
                let (_, deliveries) = store.event(&w.tenant, &a.id).await.expect("stored");
                assert_eq!(deliveries.len(), 2);
                assert!(seen(i).await, "the id of stored event {i} is seen");
                stored.push(format!("d-{i}"));
            }
            Err(Error::Unavailable(_)) if in_failed_batch => {
                assert!(!seen(i).await, "the id of failed job {i} is not seen");
                failed.push(i);
            }
            other => panic!("job {i} (failed batch: {in_failed_batch}): {other:?}"),
        }
    }
    assert!(failed.contains(&BOOM));
    if plug.is_ok() {
        stored.push("plug".into());
    }
    let mut read: Vec<_> = store
        .events(&w.tenant, &everything())
        .await
        .expect("events")
        .into_iter()
        .filter_map(|e| e.delivery_id)
        .collect();
    read.sort();
    stored.sort();
    assert_eq!(read, stored, "exactly the acknowledged events are stored");

    for i in failed {
        let mut retry = event(i);
        retry.path = "/extra".into();
        store.append(retry).await.expect("a failed job's retry");
        assert!(seen(i).await);
    }
    store.close().await;
}

/// Ids stay above every id handed out even when the newest events were
/// deleted and the clock at restart is behind them: each job that deletes
/// events keeps a high-water mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_keep_increasing_after_the_newest_events_are_deleted() {
    #[derive(Debug, Clone, Copy)]
    enum Deleter {
        Bucket,
        Tenant,
        Retention,
    }
    for deleter in [Deleter::Bucket, Deleter::Tenant, Deleter::Retention] {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(store::sqlite::FILE_NAME);
        let store = open(&dir);
        let dyn_store: Arc<dyn Store> = store.clone();
        let w = World::create(&dyn_store, "high-water").await;
        let appended = store.append(w.event()).await.expect("append");
        store.close().await;
        drop((store, dyn_store));

        // As if the event came in while the clock ran an hour ahead, since
        // stepped back.
        let ahead = conformance::now() + 3_600_000;
        let first = model::EventId::floor_at(ahead);
        let side = rusqlite::Connection::open(&file).expect("side connection");
        side.execute_batch(&format!(
            "UPDATE events SET id = '{first}', received_at = {ahead} WHERE id = '{old}';
             UPDATE deliveries SET event_id = '{first}' WHERE event_id = '{old}';",
            old = appended.id
        ))
        .expect("move the event ahead");

        let store = open(&dir);
        match deleter {
            Deleter::Bucket => store.delete_bucket(&w.tenant, &w.bucket.id).await,
            Deleter::Tenant => store.delete_tenant(&w.tenant).await,
            Deleter::Retention => {
                let later = ahead + 2 * 86_400_000;
                store.purge_expired(later, 100).await.map(drop)
            }
        }
        .expect("delete");
        store.close().await;
        drop(store);
        let left: i64 = side
            .query_row(
                "SELECT count(*) FROM deliveries WHERE event_id = ?1",
                [first.to_string()],
                |r| r.get(0),
            )
            .expect("count deliveries");
        assert_eq!(left, 0, "{deleter:?}: the event's deliveries went too");

        let store = open(&dir);
        let dyn_store: Arc<dyn Store> = store.clone();
        let w = World::create(&dyn_store, "high-water-after").await;
        let next = store.append(w.event()).await.expect("append after reopen");
        assert!(next.id > first, "{deleter:?}: {} after {first}", next.id);
        store.close().await;
    }
}
