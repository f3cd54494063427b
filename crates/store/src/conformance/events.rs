//! Conformance checks of appends: round trip, order under concurrency,
//! dedup, ephemeral events and deliveries.

use std::collections::HashSet;
use std::sync::Arc;

use model::{DeliveryState, EventBody, EventId};

use super::{
    append_concurrently, assert_not_found, bucket_in, event_for, ids, input_in, now, output_in,
    query, World,
};
use crate::{Appended, Cursor, Error, Store};

/// Every field of an appended event reads back as sent, with a pending
/// delivery per output of the bucket.
pub async fn append_round_trip(store: &Arc<dyn Store>) {
    let w = World::create(store, "round-trip").await;
    let mut sent = w.event();
    sent.integration = Some(model::IntegrationKind::Github);
    sent.delivery_id = Some("gh-1".into());
    sent.event_count = 3;
    sent.verified = true;
    sent.body = EventBody::Stored(vec![0, 159, 146, 150, 255]);
    let before = now();
    let appended = store.append(sent.clone()).await.expect("append");
    assert!(appended.id.to_string().starts_with("evt_"));
    assert!(appended.received_at >= before - 1000 && appended.received_at <= now() + 1000);

    let (e, deliveries) = store
        .event(&w.tenant, &appended.id)
        .await
        .expect("read event");
    assert_eq!((e.id, e.received_at), (appended.id, appended.received_at));
    assert_eq!(
        (&e.tenant, &e.bucket, e.input),
        (&w.tenant, &w.bucket.id, w.input.id)
    );
    assert_eq!(e.integration, sent.integration);
    assert_eq!((e.method.as_str(), e.path.as_str()), ("POST", "/extra"));
    assert_eq!(e.query.as_deref(), Some("a=1"));
    assert_eq!(
        e.headers.as_ref(),
        Some(&sent.headers),
        "headers keep order and repeats"
    );
    assert_eq!(e.body, sent.body, "binary bodies are kept byte for byte");
    assert_eq!(e.client_ip, sent.client_ip);
    assert_eq!(
        (e.delivery_id.as_deref(), e.event_type.as_deref()),
        (Some("gh-1"), Some("push"))
    );
    assert_eq!((e.event_count, e.verified), (3, true));

    assert_eq!(deliveries.len(), w.outputs.len());
    let mut outputs: Vec<_> = deliveries.iter().map(|d| d.output.clone()).collect();
    outputs.sort();
    let mut expected: Vec<_> = w.outputs.iter().map(|o| o.id.clone()).collect();
    expected.sort();
    assert_eq!(outputs, expected);
    for d in &deliveries {
        assert_eq!(
            (d.event, d.state, d.group.as_deref()),
            (e.id, DeliveryState::Pending, None)
        );
        assert!(d.attempts.is_empty());
    }
    assert_not_found(
        store.event(&w.tenant, &EventId::floor_at(1)).await,
        "unknown event",
    );
}

/// One after another, ids strictly increase and times never go back.
pub async fn sequential_order(store: &Arc<dyn Store>) {
    let w = World::create(store, "sequential").await;
    let mut last: Option<Appended> = None;
    for _ in 0..20 {
        let a = store.append(w.event()).await.expect("append");
        if let Some(prev) = last {
            assert!(a.id > prev.id, "{} then {}", prev.id, a.id);
            assert!(a.received_at >= prev.received_at);
        }
        assert_eq!(
            a.id.ulid().timestamp_ms() as i64,
            a.received_at,
            "id time is receive time"
        );
        last = Some(a);
    }
}

/// 200 concurrent appends: distinct ids, id order is receive order, and a
/// read returns them all in that order.
pub async fn concurrent_appends_are_ordered(store: &Arc<dyn Store>) {
    let w = World::create(store, "concurrent").await;
    let mut appended = append_concurrently(store, &w.event(), 200).await;
    let distinct: HashSet<EventId> = appended.iter().map(|a| a.id).collect();
    assert_eq!(distinct.len(), 200, "ids are distinct");
    appended.sort_by_key(|a| a.id);
    assert!(appended
        .windows(2)
        .all(|p| p[0].received_at <= p[1].received_at));
    let read = store
        .events(&w.tenant, &query(Cursor::Start, 1000))
        .await
        .expect("events");
    assert_eq!(
        ids(&read),
        appended.iter().map(|a| a.id).collect::<Vec<_>>()
    );
    assert!(read
        .windows(2)
        .all(|p| p[0].received_at <= p[1].received_at));
}

/// A delivery id is refused within its window, per (tenant, input), and
/// accepted again once the window is over.
pub async fn dedup(store: &Arc<dyn Store>) {
    let w = World::create(store, "dedup").await;
    let other_input = input_in(&w.bucket, None);
    store
        .create_input(&other_input)
        .await
        .expect("create input");
    let mut e = w.event();
    e.delivery_id = Some("d-1".into());
    let first = store.append(e.clone()).await.expect("first append");
    let seen = |at: i64| store.delivery_seen(&w.tenant, &w.input.id, "d-1", at);
    assert!(seen(first.received_at).await.expect("seen"));
    assert!(!seen(first.received_at + 300_001)
        .await
        .expect("seen after the window"));
    assert!(!store
        .delivery_seen(&w.tenant, &w.input.id, "d-2", now())
        .await
        .expect("seen"));

    match store.append(e.clone()).await {
        Err(Error::Duplicate) => {}
        other => panic!("second append in the window: expected Duplicate, got {other:?}"),
    }
    let stored = store
        .events(&w.tenant, &query(Cursor::Start, 100))
        .await
        .expect("events");
    assert_eq!(
        ids(&stored),
        [first.id],
        "a refused duplicate leaves nothing behind"
    );

    let mut elsewhere = event_for(&other_input);
    elsewhere.delivery_id = Some("d-1".into());
    store
        .append(elsewhere)
        .await
        .expect("the same id on another input");
    let other = World::create(store, "dedup-other").await;
    let mut foreign = other.event();
    foreign.delivery_id = Some("d-1".into());
    store
        .append(foreign)
        .await
        .expect("the same id in another tenant");

    // A zero window expires at once: the next append is past it.
    let mut brief = w.event();
    brief.delivery_id = Some("d-0".into());
    brief.dedup_window_ms = 0;
    store.append(brief.clone()).await.expect("first");
    store.append(brief).await.expect("allowed after the window");
    // Appends without a delivery id never collide.
    store.append(w.event()).await.expect("no delivery id");
    store.append(w.event()).await.expect("no delivery id");
}

/// An event with an omitted body keeps only its size: no body, headers or
/// query come back.
pub async fn ephemeral_events(store: &Arc<dyn Store>) {
    let w = World::create(store, "ephemeral").await;
    let mut bucket = bucket_in(&w.tenant, "fleeting");
    bucket.ephemeral = true;
    store.create_bucket(&bucket).await.expect("create bucket");
    let input = input_in(&bucket, None);
    store.create_input(&input).await.expect("create input");
    store
        .create_output(&output_in(&bucket))
        .await
        .expect("create output");
    let mut e = event_for(&input);
    e.body = EventBody::Omitted { size: 1234 };
    let appended = store.append(e).await.expect("append");
    let (read, deliveries) = store.event(&w.tenant, &appended.id).await.expect("read");
    assert_eq!(read.body, EventBody::Omitted { size: 1234 });
    assert_eq!((read.query, read.headers), (None, None));
    assert_eq!(deliveries.len(), 1, "ephemeral events are still delivered");
    let listed = store
        .events(&w.tenant, &query(Cursor::Start, 10))
        .await
        .expect("events");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body, EventBody::Omitted { size: 1234 });
    assert!(listed[0].headers.is_none() && listed[0].query.is_none());
}

/// Deliveries are reset to pending, all of them or one output's.
pub async fn deliveries_and_reset(store: &Arc<dyn Store>) {
    let w = World::create(store, "deliveries").await;
    let a = store.append(w.event()).await.expect("append");
    let t = &w.tenant;
    assert_eq!(
        store
            .reset_deliveries(t, &a.id, None)
            .await
            .expect("reset all"),
        2
    );
    let one = Some(&w.outputs[1].id);
    assert_eq!(
        store
            .reset_deliveries(t, &a.id, one)
            .await
            .expect("reset one"),
        1
    );
    let unknown = model::OutputId::generate();
    assert_eq!(
        store
            .reset_deliveries(t, &a.id, Some(&unknown))
            .await
            .expect("reset none"),
        0
    );
    let (_, deliveries) = store.event(t, &a.id).await.expect("read");
    assert!(deliveries.iter().all(|d| d.state == DeliveryState::Pending));
    assert_not_found(
        store.reset_deliveries(t, &EventId::floor_at(1), None).await,
        "unknown event",
    );

    // An output added later gets deliveries for later events only.
    store
        .create_output(&output_in(&w.bucket))
        .await
        .expect("third output");
    let b = store.append(w.event()).await.expect("append");
    assert_eq!(store.event(t, &a.id).await.expect("read").1.len(), 2);
    assert_eq!(store.event(t, &b.id).await.expect("read").1.len(), 3);
}

/// A handshake or a stopped event reads back with its marks and has no
/// deliveries; an unmarked one reads back with none (DESIGN §14).
pub async fn marked_events_have_no_deliveries(store: &Arc<dyn Store>) {
    let w = World::create(store, "marks").await;
    let cases = [
        model::EventMarks {
            handshake: true,
            ..Default::default()
        },
        model::EventMarks {
            stopped: true,
            ..Default::default()
        },
    ];
    for marks in cases {
        let mut sent = w.event();
        sent.marks = marks.clone();
        let appended = store.append(sent).await.expect("append");
        let (e, deliveries) = store.event(&w.tenant, &appended.id).await.expect("read");
        assert_eq!(e.marks, marks);
        assert!(deliveries.is_empty(), "{marks:?}");
    }
    let mut failed = w.event();
    failed.marks.function_error = Some("runtime error: boom".into());
    let appended = store.append(failed.clone()).await.expect("append");
    let (e, deliveries) = store.event(&w.tenant, &appended.id).await.expect("read");
    assert_eq!(e.marks, failed.marks);
    assert_eq!(
        deliveries.len(),
        w.outputs.len(),
        "a failed function still delivers"
    );
    let appended = store.append(w.event()).await.expect("append");
    let (e, _) = store.event(&w.tenant, &appended.id).await.expect("read");
    assert!(e.marks.is_empty());
}
