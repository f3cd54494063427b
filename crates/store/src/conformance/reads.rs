//! Conformance checks of reads: cursors and filters, retention, visibility,
//! commit ticks, and a poller that must never miss an event.

use std::collections::HashSet;
use std::sync::Arc;

use model::{Bucket, EventId};

use super::{
    append_concurrently, assert_not_found, bucket_in, event_for, ids, input_in, now, query, World,
    PATIENCE,
};
use crate::{Appended, Cursor, EventQuery, Store};

/// A world with a second bucket and ten events appended alternately to
/// the world's bucket (even) and the second (odd), oldest first.
async fn ten_events_in_two_buckets(
    store: &Arc<dyn Store>,
    label: &str,
) -> (World, Bucket, Vec<Appended>) {
    let w = World::create(store, label).await;
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
    (w, second, all)
}

/// Start, After and Since cursors, bucket filters and limits.
pub async fn cursors(store: &Arc<dyn Store>) {
    let (w, second, all) = ten_events_in_two_buckets(store, "cursors").await;
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

/// Newest and Before read newest first, with bucket filters and limits;
/// paging with Before visits every event once; another tenant's read is
/// empty.
pub async fn newest_first_cursors(store: &Arc<dyn Store>) {
    let (w, second, all) = ten_events_in_two_buckets(store, "newest-first").await;
    let oldest_first: Vec<EventId> = all.iter().map(|a| a.id).collect();
    let newest: Vec<EventId> = oldest_first.iter().rev().copied().collect();
    let t = &w.tenant;
    let read = |from, buckets, limit| EventQuery {
        from,
        buckets,
        limit,
    };

    let got = store
        .events(t, &read(Cursor::Newest, vec![], 100))
        .await
        .expect("newest");
    assert_eq!(ids(&got), newest, "Newest reads every event, newest first");
    let got = store
        .events(t, &read(Cursor::Newest, vec![], 3))
        .await
        .expect("newest 3");
    assert_eq!(ids(&got), newest[..3], "the limit keeps the newest");
    assert!(store
        .events(t, &read(Cursor::Newest, vec![], 0))
        .await
        .expect("limit 0")
        .is_empty());
    let got = store
        .events(t, &read(Cursor::Before(oldest_first[6]), vec![], 100))
        .await
        .expect("before");
    assert_eq!(ids(&got), newest[4..], "Before is strictly before");
    assert!(store
        .events(t, &read(Cursor::Before(oldest_first[0]), vec![], 100))
        .await
        .expect("before the oldest")
        .is_empty());
    let above = EventId::floor_at(i64::from(u32::MAX) * 1000);
    let got = store
        .events(t, &read(Cursor::Before(above), vec![], 100))
        .await
        .expect("before a later id");
    assert_eq!(ids(&got), newest);

    let got = store
        .events(t, &read(Cursor::Newest, vec![second.id.clone()], 100))
        .await
        .expect("one bucket");
    let seconds: Vec<EventId> = newest.iter().copied().step_by(2).collect();
    assert_eq!(
        ids(&got),
        seconds,
        "events 9, 7, ... are the second bucket's"
    );
    assert!(got.iter().all(|e| e.bucket == second.id));
    let both = vec![w.bucket.id.clone(), second.id.clone()];
    let got = store
        .events(t, &read(Cursor::Before(oldest_first[9]), both, 4))
        .await
        .expect("two buckets");
    assert_eq!(
        ids(&got),
        newest[1..5],
        "two buckets merge newest first before the limit"
    );
    let got = store
        .events(
            t,
            &read(
                Cursor::Before(oldest_first[9]),
                vec![w.bucket.id.clone()],
                2,
            ),
        )
        .await
        .expect("before + bucket + limit");
    assert_eq!(ids(&got), [oldest_first[8], oldest_first[6]]);

    // Paging with Before visits every event exactly once, newest first.
    let mut paged = Vec::new();
    let mut from = Cursor::Newest;
    loop {
        let page = store.events(t, &read(from, vec![], 3)).await.expect("page");
        let Some(last) = page.last() else { break };
        from = Cursor::Before(last.id);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, newest);

    let other = World::create(store, "newest-first-other").await;
    assert!(store
        .events(&other.tenant, &read(Cursor::Newest, vec![], 100))
        .await
        .expect("other tenant")
        .is_empty());
    assert!(store
        .events(
            &other.tenant,
            &read(Cursor::Newest, vec![w.bucket.id.clone()], 100)
        )
        .await
        .expect("other tenant, this bucket")
        .is_empty());
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

/// `visible_before` is not in the future, passes every committed event once
/// the clock does, and `commits()` ticks after an append.
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
    // Nothing of a committed event is pending, so visible_before passes it
    // as soon as the clock does (or, for a backend allowing for clock skew,
    // within the suite's patience).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let visible = loop {
        let visible = store.visible_before();
        if visible > a.received_at {
            break visible;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "visible_before stays at {visible}, not past the committed event at {}",
            a.received_at
        );
        tokio::task::yield_now().await;
    };
    assert!(visible <= now(), "visible_before is not in the future");
    let read = store
        .events(&w.tenant, &query(Cursor::Since(0), 100))
        .await
        .expect("events");
    assert_eq!(ids(&read), [a.id], "an event below visible_before is read");
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
