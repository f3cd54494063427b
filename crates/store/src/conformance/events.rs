//! Conformance checks of events: append and read back, order under
//! concurrency, dedup, ephemeral events, cursors, deliveries, retention,
//! visibility and commit ticks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use model::{DeliveryState, Event, EventBody, EventId, NewEvent};

use super::{assert_not_found, bucket_in, event_for, input_in, now, output_in, World};
use crate::{Appended, Cursor, Error, EventQuery, Store};

/// Bound on every wait in this suite, so a broken store fails instead of
/// hanging CI.
const PATIENCE: Duration = Duration::from_secs(10);

fn query(from: Cursor, limit: usize) -> EventQuery {
    EventQuery {
        from,
        buckets: Vec::new(),
        limit,
    }
}

fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Appends `n` events concurrently, one task each.
async fn append_concurrently(store: &Arc<dyn Store>, event: &NewEvent, n: usize) -> Vec<Appended> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, event) = (Arc::clone(store), event.clone());
            tokio::spawn(async move { store.append(event).await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("append task").expect("append"));
    }
    out
}

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

/// Start, After and Since cursors, bucket filters and limits.
pub async fn cursors(store: &Arc<dyn Store>) {
    let w = World::create(store, "cursors").await;
    let second = bucket_in(&w.tenant, "second");
    store.create_bucket(&second).await.expect("create bucket");
    let second_input = input_in(&second, None);
    store
        .create_input(&second_input)
        .await
        .expect("create input");
    let mut all = Vec::new();
    for i in 0..10 {
        let e = if i % 2 == 0 {
            w.event()
        } else {
            event_for(&second_input)
        };
        all.push(store.append(e).await.expect("append"));
    }
    let all_ids: Vec<EventId> = all.iter().map(|a| a.id).collect();
    let t = &w.tenant;

    let read = store
        .events(t, &query(Cursor::Start, 100))
        .await
        .expect("start");
    assert_eq!(ids(&read), all_ids);
    let read = store
        .events(t, &query(Cursor::Start, 3))
        .await
        .expect("limit");
    assert_eq!(ids(&read), all_ids[..3]);
    assert!(store
        .events(t, &query(Cursor::Start, 0))
        .await
        .expect("limit 0")
        .is_empty());
    let read = store
        .events(t, &query(Cursor::After(all_ids[3]), 100))
        .await
        .expect("after");
    assert_eq!(ids(&read), all_ids[4..], "After is strictly after");
    let read = store
        .events(t, &query(Cursor::After(all_ids[9]), 100))
        .await
        .expect("after last");
    assert!(read.is_empty());

    let since = all[5].received_at;
    let read = store
        .events(t, &query(Cursor::Since(since), 100))
        .await
        .expect("since");
    let expected: Vec<EventId> = all
        .iter()
        .filter(|a| a.received_at >= since)
        .map(|a| a.id)
        .collect();
    assert_eq!(ids(&read), expected, "Since includes its own millisecond");
    let read = store
        .events(t, &query(Cursor::Since(all[9].received_at + 1), 100))
        .await
        .expect("since");
    assert!(read.is_empty());
    let read = store
        .events(t, &query(Cursor::Since(i64::MAX), 100))
        .await
        .expect("since max");
    assert!(read.is_empty());
    let read = store
        .events(t, &query(Cursor::Since(-5), 100))
        .await
        .expect("since negative");
    assert_eq!(read.len(), 10);

    let only = |buckets| EventQuery {
        from: Cursor::Start,
        buckets,
        limit: 100,
    };
    let read = store
        .events(t, &only(vec![second.id.clone()]))
        .await
        .expect("one bucket");
    assert_eq!(
        ids(&read),
        all_ids
            .iter()
            .copied()
            .skip(1)
            .step_by(2)
            .collect::<Vec<_>>()
    );
    assert!(read.iter().all(|e| e.bucket == second.id));
    let both = vec![w.bucket.id.clone(), second.id.clone()];
    assert_eq!(
        ids(&store.events(t, &only(both)).await.expect("both")),
        all_ids
    );
    let filtered = EventQuery {
        from: Cursor::After(all_ids[0]),
        buckets: vec![w.bucket.id.clone()],
        limit: 2,
    };
    let read = store
        .events(t, &filtered)
        .await
        .expect("after + bucket + limit");
    assert_eq!(ids(&read), [all_ids[2], all_ids[4]]);

    // Paging with After visits every event exactly once.
    let mut paged = Vec::new();
    let mut from = Cursor::Start;
    loop {
        let page = store.events(t, &query(from, 3)).await.expect("page");
        let Some(last) = page.last() else { break };
        from = Cursor::After(last.id);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, all_ids);
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

/// Events older than their bucket's retention go, in bounded batches; the
/// others stay.
pub async fn purge_respects_retention(store: &Arc<dyn Store>) {
    let w = World::create(store, "retention").await;
    let mut short = bucket_in(&w.tenant, "short");
    short.retention_seconds = 1;
    store.create_bucket(&short).await.expect("create bucket");
    let short_input = input_in(&short, None);
    store
        .create_input(&short_input)
        .await
        .expect("create input");
    let mut doomed = Vec::new();
    for _ in 0..3 {
        doomed.push(store.append(event_for(&short_input)).await.expect("append"));
    }
    let kept = store.append(w.event()).await.expect("append");
    let later = now() + 5_000;

    let first = store.purge_expired(later, 2).await.expect("purge");
    assert!((1..=2).contains(&first), "a batch is bounded: {first}");
    let mut total = first;
    for _ in 0..100 {
        let n = store.purge_expired(later, 2).await.expect("purge");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total >= 3, "all expired events went: {total}");
    for a in &doomed {
        assert_not_found(store.event(&w.tenant, &a.id).await, "expired event");
    }
    let (_, deliveries) = store.event(&w.tenant, &kept.id).await.expect("kept event");
    assert_eq!(deliveries.len(), 2);
    let left = store
        .events(&w.tenant, &query(Cursor::Start, 100))
        .await
        .expect("events");
    assert_eq!(ids(&left), [kept.id]);
}

/// `visible_before` is not in the future, covers every committed event, and
/// `commits()` ticks after an append.
pub async fn visibility_and_commits(store: &Arc<dyn Store>) {
    let w = World::create(store, "visibility").await;
    let mut ticks = store.commits();
    ticks.borrow_and_update();
    let a = store.append(w.event()).await.expect("append");
    tokio::time::timeout(PATIENCE, ticks.changed())
        .await
        .expect("commits() ticks after an append")
        .expect("the commit channel stays open");

    let visible = store.visible_before();
    assert!(visible <= now(), "visible_before is not in the future");
    let read = store
        .events(&w.tenant, &query(Cursor::Since(0), 100))
        .await
        .expect("events");
    if a.received_at < visible {
        assert_eq!(ids(&read), [a.id]);
    }
}

/// A poller that passes each answer's `visible_before` as its next `since`
/// sees every event appended while it polls (DESIGN §8, poll consistency).
pub async fn polling_never_misses(store: &Arc<dyn Store>) {
    let w = World::create(store, "polling").await;
    let writers = {
        let (store, event) = (Arc::clone(store), w.event());
        tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..10 {
                out.extend(append_concurrently(&store, &event, 20).await);
            }
            out
        })
    };
    let mut seen = HashSet::new();
    let mut since = 0;
    let mut rounds_after_done = 0;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // Two polls after the writers finished: the first may stop short of the
    // newest millisecond, the second (from its visible_before) covers it.
    while rounds_after_done < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "polling took too long"
        );
        if writers.is_finished() {
            rounds_after_done += 1;
        }
        let visible = store.visible_before();
        let page = store
            .events(&w.tenant, &query(Cursor::Since(since), 10_000))
            .await
            .expect("poll");
        seen.extend(ids(&page));
        since = visible;
        tokio::task::yield_now().await;
    }
    let appended = writers.await.expect("writers");
    let missed = appended.iter().filter(|a| !seen.contains(&a.id)).count();
    assert_eq!(missed, 0, "a poller following visible_before missed events");
}
