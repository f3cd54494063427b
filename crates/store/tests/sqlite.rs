//! The SQLite store against the shared conformance suite, plus what only an
//! embedded store can show: persistence across reopen, group commit, and
//! ephemeral payloads never reaching the file.
//!
//! Needs the `test-suite` feature: `cargo test -p store --features test-suite`.

use std::sync::Arc;

use model::{EventBody, TokenScope};
use store::conformance::{self, bucket_in, event_for, input_in, token_in, World};
use store::sqlite::SqliteStore;
use store::{Cursor, Error, EventQuery, Store};

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
async fn a_duplicate_rolls_back_alone_within_its_batch() {
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
