//! The SQLite store against the shared conformance suite, plus what only an
//! embedded store can show: persistence across reopen (ids included), and
//! ephemeral payloads never reaching the file.
//!
//! Needs the `test-suite` feature: `cargo test -p store --features test-suite`.
//!
//! # Layout
//! - `main.rs`: the conformance suite (one test per check,
//!   `conformance::<check>`), opening, reopening, ids across
//!   deletes and restarts, ephemeral payloads.
//! - `batches`: group commit, and what one job's refusal or failure does to
//!   its batch.
//! - `keys`: encryption at rest in the file, tampering, rotation and
//!   re-encryption.
//! - `lanes`: an agent group's queue read per output from a cursor.

mod batches;
mod keys;
mod lanes;

use std::sync::Arc;

use model::{EventBody, TokenScope};
use store::conformance::{bucket_in, event_for, input_in, token_in, World};
use store::prelude::*;
use store::sqlite::SqliteStore;
use store::{Cursor, Error, EventQuery};

pub(crate) fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(dir.path()).expect("open the store"))
}

pub(crate) fn everything() -> EventQuery {
    EventQuery {
        from: Cursor::Start,
        buckets: Vec::new(),
        limit: 10_000,
    }
}

/// A fresh store in a directory of its own, per conformance check.
async fn open_fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (open(&dir), dir)
}

/// The conformance suite, one test per check (`conformance::<check>`).
mod conformance {
    store::conformance_tests!(open = super::open_fresh, finish = super::keep_until_done);
}

/// The directory goes once its check is done with the store.
async fn keep_until_done(_dir: tempfile::TempDir) {}

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
    e.headers = vec![("x-marker".into(), MARKER.as_bytes().to_vec())];
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
        let ahead = store::conformance::now() + 3_600_000;
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
