//! Encryption at rest as the file shows it: no payload or input secret in
//! plaintext in any file of the data directory, tampering and wrong keys
//! reported per event, and rotation with re-encryption.

use std::path::Path;
use std::sync::Arc;

use crypto::{Key, Keyring};
use model::{BucketAuth, EventBody, Secret};
use store::conformance::World;
use store::prelude::*;
use store::sqlite::{KeyMaintenance, SqliteStore};
use store::Error;

use super::everything;

fn ring(keys: &[&Key]) -> Keyring {
    let keys: Vec<Key> = keys.iter().map(|k| (*k).clone()).collect();
    Keyring::new(&keys).expect("keyring")
}

fn open_with(dir: &Path, keys: Keyring) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_with(dir, keys).expect("open the store"))
}

/// Every file under `dir` (database, WAL, shared memory, key file) that
/// contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

async fn world_with_marker(store: &Arc<dyn Store>, marker: &str) -> World {
    let mut w = World::create(store, "sealed").await;
    w.bucket.auth = BucketAuth::Token {
        token: Secret::new(format!("tok-{marker}")),
    };
    store.update_bucket(&w.bucket).await.expect("update bucket");
    w.input.secrets = vec![Secret::new(format!("secret-{marker}"))];
    store.update_input(&w.input).await.expect("update input");
    let mut e = w.event();
    e.body = EventBody::Stored(format!("{{\"body\":\"{marker}\"}}").into_bytes());
    e.headers
        .push(("x-marker".into(), format!("h-{marker}").into_bytes()));
    e.query = format!("q={marker}");
    store.append(e).await.expect("append");
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_and_input_secrets_are_ciphertext_in_every_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = "MARKER-7f3a9c";
    let store = open_with(dir.path(), ring(&[&Key::generate()]));
    let w = world_with_marker(&store, marker).await;
    // The control: the store gives the plaintext back, so the scan below
    // looks for bytes that would be there if they were stored as is.
    let read = store.events(&w.tenant, &everything()).await.expect("read");
    assert_eq!(read[0].query.as_deref(), Some(&*format!("q={marker}")));
    let input = store.input_by_id(&w.input.id).await.expect("input");
    assert_eq!(input.secrets[0].expose(), format!("secret-{marker}"));
    let bucket = store.bucket(&w.tenant, &w.bucket.id).await.expect("bucket");
    assert!(
        matches!(bucket.auth, BucketAuth::Token { ref token } if *token.expose() == *format!("tok-{marker}"))
    );
    store.close().await;
    assert_eq!(
        files_containing(dir.path(), marker.as_bytes()),
        Vec::<String>::new()
    );
    // And the scan does find what is stored in clear (the input's name).
    assert!(!files_containing(dir.path(), b"hook").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_payload_or_a_wrong_key_is_an_error_for_that_event_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = Key::generate();
    let store = open_with(dir.path(), ring(&[&key]));
    let w = world_with_marker(&store, "t1").await;
    store
        .append(w.event())
        .await
        .expect("append a second event");
    store.close().await;

    let db = rusqlite::Connection::open(dir.path().join(store::sqlite::FILE_NAME)).expect("db");
    // Flip one ciphertext bit of the first event.
    let (seq, mut payload): (i64, Vec<u8>) = db
        .query_row(
            "SELECT seq, payload FROM events ORDER BY seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("read the payload");
    payload[20] ^= 0x01;
    db.execute(
        "UPDATE events SET payload = ?2 WHERE seq = ?1",
        rusqlite::params![seq, payload],
    )
    .expect("tamper");
    drop(db);

    let store = open_with(dir.path(), ring(&[&key]));
    let events = store.events(&w.tenant, &everything()).await.expect("read");
    assert_eq!(events.len(), 2, "one bad record hides no other");
    assert!(matches!(events[0].body, EventBody::Undecryptable { size } if size > 0));
    assert_eq!(
        (events[0].headers.as_ref(), events[0].query.as_ref()),
        (None, None)
    );
    assert!(matches!(events[1].body, EventBody::Stored(_)));
    let (one, _) = store
        .event(&w.tenant, &events[0].id)
        .await
        .expect("one event");
    assert!(matches!(one.body, EventBody::Undecryptable { .. }));
    store.close().await;

    // The right file under another key: every payload is an error, and an
    // input whose secrets cannot be read is refused, never served empty.
    let store = open_with(dir.path(), ring(&[&Key::generate()]));
    let events = store.events(&w.tenant, &everything()).await.expect("read");
    assert!(events
        .iter()
        .all(|e| matches!(e.body, EventBody::Undecryptable { .. })));
    assert!(matches!(
        store.input_by_id(&w.input.id).await,
        Err(Error::Corrupt(_))
    ));
    assert!(matches!(
        store.bucket(&w.tenant, &w.bucket.id).await,
        Err(Error::Corrupt(_))
    ));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_read_reencrypt_retire_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, new) = (Key::generate(), Key::generate());
    let store = open_with(dir.path(), ring(&[&old]));
    let w = world_with_marker(&store, "before").await;
    store.close().await;

    // Rotate: the new key encrypts, the old one still decrypts.
    let store = open_with(dir.path(), ring(&[&new, &old]));
    let mut e = w.event();
    e.body = EventBody::Stored(b"after".to_vec());
    store.append(e).await.expect("append under the new key");
    let events = store.events(&w.tenant, &everything()).await.expect("read");
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| matches!(e.body, EventBody::Stored(_))));
    store.close().await;

    let mut keys = KeyMaintenance::open(dir.path(), ring(&[&new, &old])).expect("maintenance");
    let usage = keys.usage().expect("usage");
    assert_eq!(usage.events.get(&old.id()), Some(&1));
    assert_eq!(usage.events.get(&new.id()), Some(&1));
    assert_eq!(usage.inputs.get(&old.id()), Some(&1));
    assert_eq!(usage.buckets.get(&old.id()), Some(&1));
    assert_eq!(usage.server_active, Some(new.id()));
    // Batches of one: resumable steps, each its own transaction.
    let mut rewritten = 0;
    loop {
        let step = keys.reencrypt_step(1).expect("step");
        assert_eq!(step.unreadable, 0);
        rewritten += step.rewritten;
        if step.done {
            break;
        }
    }
    assert_eq!(
        rewritten, 3,
        "the old event, the input's secrets, the bucket's auth"
    );
    let usage = keys.usage().expect("usage");
    assert_eq!(usage.records(old.id()), 0);
    assert_eq!(usage.records(new.id()), 4);
    drop(keys);

    // Retired: only the new key is left, and everything still reads.
    let store = open_with(dir.path(), ring(&[&new]));
    let events = store.events(&w.tenant, &everything()).await.expect("read");
    let bodies: Vec<_> = events.iter().map(|e| e.body.clone()).collect();
    assert_eq!(
        bodies,
        vec![
            EventBody::Stored(b"{\"body\":\"before\"}".to_vec()),
            EventBody::Stored(b"after".to_vec())
        ]
    );
    let input = store.input_by_id(&w.input.id).await.expect("input");
    assert_eq!(input.secrets[0].expose(), "secret-before");
    let bucket = store.bucket(&w.tenant, &w.bucket.id).await.expect("bucket");
    assert!(
        matches!(bucket.auth, BucketAuth::Token { ref token } if token.expose() == "tok-before")
    );
    store.close().await;
}

#[test]
fn maintenance_never_creates_a_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(matches!(
        KeyMaintenance::open(dir.path(), ring(&[&Key::generate()])),
        Err(Error::NotFound)
    ));
}
