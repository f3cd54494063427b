//! Group commit, and what one job's refusal or failure does to its batch:
//! a duplicate is refused alone, a failure after a write fails them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use model::NewEvent;
use store::conformance::{self, World};
use store::prelude::*;
use store::sqlite::SqliteStore;
use store::{Appended, Error};

use crate::{everything, open};

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
