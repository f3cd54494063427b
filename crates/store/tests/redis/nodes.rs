//! Two stores on one namespace: two nodes of a cluster sharing one Redis.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use model::{EventBody, EventId};
use store::conformance::World;
use store::prelude::*;
use store::{Cursor, Error, EventQuery};

use super::{cleanup, keyring, namespace, open};

/// Appends in the two-node order test, half on each node.
const N: usize = 1000;

/// Short liveness, so a "killed" node's claims come back quickly.
pub(crate) const TTL: Duration = Duration::from_secs(1);

pub(crate) async fn two_nodes(ns: &str) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let keys = keyring();
    let a: Arc<dyn Store> = Arc::new(open(ns, keys.clone(), TTL).await);
    let b: Arc<dyn Store> = Arc::new(open(ns, keys, TTL).await);
    (a, b)
}

fn everything() -> EventQuery {
    EventQuery {
        from: Cursor::Start,
        buckets: Vec::new(),
        limit: 10_000,
    }
}

/// Bound on every wait: a liveness TTL and a sweep, with room to spare.
pub(crate) fn patience() -> Duration {
    Duration::from_secs(15)
}

/// Concurrent appends on both nodes: one strict order by id, receive times
/// never going back in it, every event visible from either node; and a
/// commit on one node ticks the other's `commits()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_two_nodes_share_one_order() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "two-nodes").await;

    let mut ticks = b.commits();
    ticks.borrow_and_update();
    a.append(w.event()).await.expect("append on A");
    tokio::time::timeout(patience(), ticks.changed())
        .await
        .expect("a commit on A ticks B's commits()")
        .expect("B's commit channel stays open");

    let mut tasks = Vec::new();
    for i in 0..N {
        let node = Arc::clone(if i % 2 == 0 { &a } else { &b });
        let event = w.event();
        tasks.push(tokio::spawn(async move { node.append(event).await }));
    }
    let mut appended = Vec::new();
    for task in tasks {
        appended.push(task.await.expect("task").expect("append"));
    }
    let distinct: HashSet<EventId> = appended.iter().map(|x| x.id).collect();
    assert_eq!(distinct.len(), N);
    appended.sort_by_key(|x| x.id);
    assert!(appended
        .windows(2)
        .all(|p| p[0].received_at <= p[1].received_at));
    for node in [&a, &b] {
        let read = node.events(&w.tenant, &everything()).await.expect("events");
        // Ids the append script re-minted included: their payloads open.
        assert!(read
            .iter()
            .all(|e| matches!(e.body, EventBody::Stored(ref b) if b == b"{\"hello\":\"world\"}")));
        let ids: Vec<EventId> = read.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), N + 1);
        assert!(ids.windows(2).all(|p| p[0] < p[1]));
        let read: HashSet<EventId> = ids.into_iter().collect();
        assert!(appended.iter().all(|x| read.contains(&x.id)));
    }
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// The same delivery id appended at once on both nodes: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dedup_holds_across_nodes() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "dedup-nodes").await;
    for round in 0..20 {
        let mut e = w.event();
        e.delivery_id = Some(format!("race-{round}"));
        let (ea, eb) = (e.clone(), e);
        let (na, nb) = (Arc::clone(&a), Arc::clone(&b));
        let ta = tokio::spawn(async move { na.append(ea).await });
        let tb = tokio::spawn(async move { nb.append(eb).await });
        let results = [ta.await.expect("task"), tb.await.expect("task")];
        let won = results.iter().filter(|r| r.is_ok()).count();
        let dup = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Duplicate)))
            .count();
        assert_eq!((won, dup), (1, 1), "round {round}: {results:?}");
    }
    let stored = a.events(&w.tenant, &everything()).await.expect("events");
    assert_eq!(stored.len(), 20);
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// A rate-limit window is shared by the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_count_across_nodes() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let limit = model::RateLimit {
        requests: 3,
        window_seconds: 60,
    };
    let now = store::clock::now_ms();
    let key = "ingest:acme:input:203.0.113.7";
    for node in [&a, &b, &a] {
        let d = node.rate_limit(key, limit, now).await.expect("rate limit");
        assert_eq!(d, store::RateDecision::Allowed);
    }
    match b.rate_limit(key, limit, now).await.expect("rate limit") {
        store::RateDecision::Limited { retry_after_secs } => assert!(retry_after_secs >= 1),
        other => panic!("the fourth request in the window passed: {other:?}"),
    }
    let other = b
        .rate_limit("poll:203.0.113.7", limit, now)
        .await
        .expect("rate limit");
    assert_eq!(other, store::RateDecision::Allowed, "keys are separate");
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// Concurrent requests on one key, batched into shared script calls on
/// each node, are counted one by one: exactly the limit passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rate_limit_hits_are_counted_exactly() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let limit = model::RateLimit {
        requests: 50,
        window_seconds: 60,
    };
    let now = store::clock::now_ms();
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let node = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let key = if i % 4 < 2 {
                "ingest:one"
            } else {
                "ingest:two"
            };
            tokio::spawn(async move { (key, node.rate_limit(key, limit, now).await) })
        })
        .collect();
    let mut allowed = std::collections::HashMap::new();
    for task in tasks {
        let (key, decision) = task.await.expect("task");
        if decision.expect("rate limit") == store::RateDecision::Allowed {
            *allowed.entry(key).or_insert(0) += 1;
        }
    }
    assert_eq!(allowed.get("ingest:one"), Some(&50));
    assert_eq!(allowed.get("ingest:two"), Some(&50));
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// A node whose master key differs from the cluster's refuses to start:
/// it could read nothing the others sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_key_refuses_to_start() {
    let ns = namespace();
    let first = open(&ns, keyring(), TTL).await;
    let options = store::redis::RedisOptions {
        namespace: ns.clone(),
        node_ttl: TTL,
        ..Default::default()
    };
    let other = store::redis::RedisStore::open(&super::url(), keyring(), options).await;
    // Corrupt, not Unavailable: a mistake in the node's configuration,
    // which the binary reports with exit code 64 (issue 18).
    assert!(
        matches!(&other, Err(Error::Corrupt(m)) if m.contains("HOOKRELAY_MASTER_KEY")),
        "{:?}",
        other.err()
    );
    first.close().await;
    cleanup(&ns).await;
}

/// `close` finishes the appends queued before it: each append either
/// commits (and the other node reads it) or fails `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_finishes_queued_appends() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "close-drain").await;
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let (node, e) = (Arc::clone(&a), w.event());
            tokio::spawn(async move { node.append(e).await })
        })
        .collect();
    tokio::task::yield_now().await;
    a.close().await;
    let mut committed = HashSet::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(x) => {
                committed.insert(x.id);
            }
            Err(Error::Unavailable(_)) => {}
            Err(other) => panic!("an append during close: {other:?}"),
        }
    }
    let read: HashSet<EventId> = b
        .events(&w.tenant, &everything())
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(read, committed, "exactly the answered appends are stored");
    b.close().await;
    cleanup(&ns).await;
}

/// Redis time in ms, read now.
async fn redis_time() -> i64 {
    let client = redis::Client::open(super::url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut con)
        .await
        .expect("TIME");
    secs * 1000 + micros / 1000
}

/// An event committed after Redis time `t` carries `receivedAt >= t -
/// 500 ms` (the skew bound the append script enforces), whichever node
/// minted it, and `visible_before` stays below Redis time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_times_follow_redis_time() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "skew").await;
    for node in [&a, &b, &a, &b] {
        let before = redis_time().await;
        let appended = node.append(w.event()).await.expect("append");
        assert!(
            appended.received_at >= before - 500,
            "received at {} but committed after {before}",
            appended.received_at
        );
        assert!(node.visible_before() <= redis_time().await);
    }
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// Another node's commit ahead of this node's proposal (here a `last` id a
/// minute ahead, as a node with a fast clock would leave): the append
/// script mints the id above it instead of refusing, the payload still
/// opens, and the node proposes above it from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_behind_the_last_commit_is_reminted_not_refused() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "remint").await;
    let prefix = format!("{ns}:{{{}}}:", w.tenant.as_str());
    let client = redis::Client::open(super::url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let ahead = redis_time().await + 60_000;
    let planted = EventId::from_ulid(ulid::Ulid::from_parts(ahead as u64, 7));
    redis::cmd("SET")
        .arg(format!("{prefix}last"))
        .arg(planted.to_string())
        .query_async::<()>(&mut con)
        .await
        .expect("SET last");

    let first = a.append(w.event()).await.expect("re-minted, not refused");
    assert!(first.id > planted, "{} above {planted}", first.id);
    assert_eq!(first.received_at, ahead);
    // A's next proposal is above what it learnt; B's is not, and is re-minted.
    let second = a.append(w.event()).await.expect("append on A");
    let third = b.append(w.event()).await.expect("append on B");
    assert!(first.id < second.id && second.id < third.id);
    let remints: i64 = redis::cmd("GET")
        .arg(format!("{prefix}remints"))
        .query_async(&mut con)
        .await
        .expect("GET remints");
    assert_eq!(remints, 2, "the first append on each node");

    for node in [&a, &b] {
        let read = node.events(&w.tenant, &everything()).await.expect("events");
        let ids: Vec<EventId> = read.iter().map(|e| e.id).collect();
        assert_eq!(ids, [first.id, second.id, third.id]);
        for e in &read {
            assert!(matches!(e.body, EventBody::Stored(_)), "{} opens", e.id);
            assert_eq!(e.received_at, e.id.ulid().timestamp_ms() as i64);
        }
        let (one, deliveries) = node.event(&w.tenant, &third.id).await.expect("event");
        assert!(matches!(one.body, EventBody::Stored(_)));
        assert_eq!(deliveries.len(), 2, "one per output of the bucket");
    }
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// Which nodes hold a tunnel's agents (DESIGN §10): each node's hold is
/// seen by the others, a release takes it out at once, and a hold that is
/// not refreshed lapses by itself (a node killed with its agents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_holds_are_shared_released_and_lapse() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let tunnel = model::TunnelId::generate();
    let other = model::TunnelId::generate();
    let long = Duration::from_secs(60);
    a.hold_tunnel(&tunnel, "http://10.0.0.1:8080", long)
        .await
        .expect("hold on A");
    b.hold_tunnel(&tunnel, "http://10.0.0.2:8080", long)
        .await
        .expect("hold on B");
    let mut held = b.tunnel_nodes(&tunnel).await.expect("nodes");
    held.sort();
    assert_eq!(held, ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]);
    assert!(a.tunnel_nodes(&other).await.expect("nodes").is_empty());

    a.release_tunnel(&tunnel, "http://10.0.0.1:8080")
        .await
        .expect("release");
    assert_eq!(
        a.tunnel_nodes(&tunnel).await.expect("nodes"),
        ["http://10.0.0.2:8080"]
    );

    b.hold_tunnel(&tunnel, "http://10.0.0.2:8080", Duration::from_millis(300))
        .await
        .expect("short hold");
    let deadline = tokio::time::Instant::now() + patience();
    while !a.tunnel_nodes(&tunnel).await.expect("nodes").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an unrefreshed hold never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}
