//! Data protection as the API shows it (issue 4): a tampered record is an
//! error for that event only, a rotated token secret replaces the old one
//! at once, and retention gives the space of purged events back.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{wait_until, Relay};

use super::*;

#[tokio::test]
async fn a_tampered_payload_is_listed_with_an_error_and_never_as_garbage() {
    testkit::not_on_redis!(
        "alters a row of the SQLite file; the store crate's Redis tests tamper with Redis"
    );
    let relay = Relay::spawn().await;
    let (_, path) = plain_input(&relay).await;
    for body in ["first", "second"] {
        let url = format!("{}{path}?q={body}", relay.url);
        let (status, _) = testkit::post(&relay.http, &url, &[], body.as_bytes()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let dir = relay.stop().await.expect("the relay's temporary data dir");

    let db = rusqlite::Connection::open(dir.path().join(store::sqlite::FILE_NAME)).unwrap();
    let (seq, mut payload): (i64, Vec<u8>) = db
        .query_row(
            "SELECT seq, payload FROM events ORDER BY seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let last = payload.len() - 1;
    payload[last] ^= 0x80;
    db.execute(
        "UPDATE events SET payload = ?2 WHERE seq = ?1",
        rusqlite::params![seq, payload],
    )
    .unwrap();
    drop(db);

    let relay = Relay::builder().data_dir(dir.path()).spawn().await;
    let events = relay.events().await;
    assert_eq!(events.len(), 2, "the damaged event hides no other");
    let (bad, good) = (&events[0], &events[1]);
    assert_eq!(bad["error"], "undecryptable", "{bad}");
    for field in ["body", "headers", "query"] {
        assert!(
            bad.get(field).is_none(),
            "{field} of a damaged event: {bad}"
        );
    }
    assert_eq!(bad["size"], 5);
    assert_eq!(
        (good["body"].as_str(), good.get("error")),
        (Some("second"), None)
    );
    let id = bad["id"].as_str().unwrap();
    let one = relay
        .admin(
            Method::GET,
            &format!("/v1/events/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(one["error"], "undecryptable", "{one}");
    let (status, polled) = relay
        .call(Method::GET, "/api/events?since=0", &relay.admin, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled[0]["error"], "undecryptable", "{polled}");
}

#[tokio::test]
async fn a_rotated_token_secret_works_and_the_old_one_stops_at_once() {
    let relay = Relay::spawn().await;
    let token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant", "description": "ci"})),
            StatusCode::CREATED,
        )
        .await;
    let (key, old) = (
        token["key"].as_str().unwrap(),
        token["token"].as_str().unwrap(),
    );
    // Cached as verified by this call: rotation must evict it.
    let (status, _) = relay.call(Method::GET, "/v1/buckets", old, None).await;
    assert_eq!(status, StatusCode::OK);
    let rotated = relay
        .admin(
            Method::POST,
            &format!("/v1/tokens/{key}/rotate"),
            None,
            StatusCode::OK,
        )
        .await;
    let new = rotated["token"].as_str().unwrap();
    assert_eq!(rotated["key"], key);
    assert_eq!(rotated["description"], "ci");
    assert!(new.starts_with(&format!("{key}.")) && new != old);
    let (status, _) = relay.call(Method::GET, "/v1/buckets", old, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = relay.call(Method::GET, "/v1/buckets", new, None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = relay
        .call(
            Method::GET,
            &format!("/v1/tokens/{key}"),
            &relay.admin,
            None,
        )
        .await;
    assert!(shown.get("secret").is_none() && shown.get("token").is_none());
    let (status, answer) = relay
        .call(
            Method::POST,
            "/v1/tokens/tok_nope/rotate",
            &relay.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn retention_purges_and_hands_the_space_back() {
    testkit::not_on_redis!("measures the SQLite file's size");
    let relay = Relay::builder()
        .config(|c| c.retention_interval = Duration::from_millis(200))
        .spawn()
        .await;
    let bucket = relay
        .create_bucket(json!({"name": "short", "retentionSeconds": 3600}))
        .await;
    let input = relay
        .create_input(
            bucket["id"].as_str().unwrap(),
            json!({"rateLimit": {"requests": 100000, "windowSeconds": 60}}),
        )
        .await;
    let url = input["url"].as_str().unwrap().to_owned();
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..200 {
        let (status, _) = testkit::post(&relay.http, &url, &[], &body).await;
        assert_eq!(status, StatusCode::OK);
    }
    let db = relay.data_dir.join(store::sqlite::FILE_NAME);
    let pages = |what: &str| {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(&format!("PRAGMA {what}"), [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let full = pages("page_count");
    assert!(full > 3000, "200 × 64 KiB stored: {full} pages");
    // Shortened, the retention now covers every event once a minute passes
    // (paused time: skipped, not waited for).
    let id = bucket["id"].as_str().unwrap();
    patch(
        &relay,
        &format!("/v1/buckets/{id}"),
        json!({"retentionSeconds": 60, "catchupSeconds": 60}),
    )
    .await;
    testkit::advance_clock(Duration::from_secs(61)).await;
    wait_until(
        Duration::from_secs(20),
        "retention empties the bucket",
        // One event per poll: reading all 200 × 64 KiB every 10 ms starves
        // the purge on two cores (10 s instead of 0.5 s).
        || async {
            let (_, page) = relay
                .call(Method::GET, "/v1/events?limit=1", &relay.admin, None)
                .await;
            page["events"].as_array().is_some_and(Vec::is_empty)
        },
    )
    .await;
    wait_until(Duration::from_secs(20), "the file shrinks", || async {
        pages("page_count") < full / 2
    })
    .await;
    assert_eq!(pages("auto_vacuum"), 2, "INCREMENTAL");
}
