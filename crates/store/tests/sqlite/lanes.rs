//! Reading an agent group's queue by lanes (issue 13): one output's rows
//! from a cursor, each read once, and rows that come back (released,
//! resent, retried) read again as "due again" whatever the cursor.

use std::sync::Arc;

use store::conformance::World;
use store::prelude::*;
use store::{DeliveryKey, LaneRead, Settle};

fn read(w: &World, at: usize, after: Option<model::EventId>, limit: usize) -> LaneRead {
    LaneRead {
        output: w.outputs[at].id.clone(),
        after,
        again: true,
        limit,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_reads_from_its_cursor_and_rows_that_come_back_are_due_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = super::open(&dir);
    let w = World::create(&store, "lanes").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    store
        .register_group(t, b, "g", 0, i64::MAX)
        .await
        .expect("register");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(store.append(w.event()).await.expect("append").id);
    }
    let now = store::clock::now_ms();

    // Two of the first output's five, then the next two from the cursor.
    let first = store
        .due_lanes(t, b, "g", now, &[read(&w, 0, None, 2)])
        .await
        .expect("lanes");
    let got: Vec<_> = first[0].due.iter().map(|d| d.key.event).collect();
    assert_eq!(got, ids[..2]);
    assert!(first[0].due.iter().all(|d| d.key.output == w.outputs[0].id));
    assert_eq!((first[0].again, first[0].exhausted), (0, false));
    assert_eq!(first[0].cursor, Some(ids[1]));
    let next = store
        .due_lanes(t, b, "g", now, &[read(&w, 0, first[0].cursor, 2)])
        .await
        .expect("lanes");
    let got: Vec<_> = next[0].due.iter().map(|d| d.key.event).collect();
    assert_eq!(got, ids[2..4], "nothing read twice");

    // The first row, sent and released (its agent went away), comes back
    // ahead of the fresh ones though the cursor has passed it.
    let key = DeliveryKey {
        tenant: t.clone(),
        event: ids[0],
        output: w.outputs[0].id.clone(),
        group: Some("g".into()),
    };
    store
        .mark_in_flight(std::slice::from_ref(&key))
        .await
        .expect("mark");
    store
        .settle(&key, None, Settle::Released)
        .await
        .expect("release");
    let back = store
        .due_lanes(t, b, "g", now, &[read(&w, 0, next[0].cursor, 10)])
        .await
        .expect("lanes");
    let got: Vec<_> = back[0].due.iter().map(|d| d.key.event).collect();
    assert_eq!(got, vec![ids[0], ids[4]]);
    assert_eq!(back[0].again, 1);
    assert!(back[0].exhausted);

    // A retry waiting out its backoff is not due; its time is told.
    store
        .mark_in_flight(std::slice::from_ref(&key))
        .await
        .expect("mark");
    store
        .settle(&key, None, Settle::RetryAt(now + 60_000))
        .await
        .expect("retry");
    let later = store
        .due_lanes(t, b, "g", now, &[read(&w, 0, back[0].cursor, 10)])
        .await
        .expect("lanes");
    assert!(later[0].due.is_empty());
    assert_eq!(later[0].next_at, Some(now + 60_000));

    // A resend makes a row due again too; the other output's lane is its own.
    store
        .reset_deliveries(t, &ids[1], None)
        .await
        .expect("resend");
    let lanes = store
        .due_lanes(
            t,
            b,
            "g",
            now,
            &[read(&w, 0, back[0].cursor, 10), read(&w, 1, None, 10)],
        )
        .await
        .expect("lanes");
    let got: Vec<_> = lanes[0].due.iter().map(|d| d.key.event).collect();
    assert_eq!(got, vec![ids[1]]);
    assert_eq!(lanes[1].due.len(), 5, "{:?}", lanes[1].due.len());
    assert_eq!(lanes[1].again, 1, "the resent row of output 2 is due again");
}
