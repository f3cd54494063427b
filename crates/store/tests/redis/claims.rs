//! Claims between two nodes: hidden from the other node, given back when
//! the claiming node dies, closes, or lets a claim's lease run out; the
//! queues they live in as outputs go.

use store::conformance::World;
use store::{Error, Settle, Signal};

use super::nodes::{patience, two_nodes};
use super::{cleanup, namespace, wait_until};

/// A claim by one node hides the delivery from the other; when the
/// claiming node dies (dropped without close: its tasks stop and its
/// liveness lapses), the other's sweeper makes them due again. Signals and
/// agents travel too, and a dead node's agents leave the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_of_a_dead_node_come_back() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "claims").await;
    let (t, bk) = (&w.tenant, &w.bucket.id);
    a.register_group(t, bk, "g", 0, i64::MAX)
        .await
        .expect("register");
    for _ in 0..2 {
        a.append(w.event()).await.expect("append");
    }
    let now = store::clock::now_ms();
    let claimed = a
        .due_deliveries(t, bk, Some("g"), now, 100)
        .await
        .expect("due on A");
    assert_eq!(claimed.due.len(), 4);
    let on_b = b
        .due_deliveries(t, bk, Some("g"), now, 100)
        .await
        .expect("due on B");
    assert!(on_b.due.is_empty(), "B does not get what A claimed");
    let marked: Vec<_> = claimed.due[..2].iter().map(|d| d.key.clone()).collect();
    a.mark_in_flight(&marked).await.expect("mark on A");

    let mut signals = b.signals().expect("B hears signals");
    let answer = Signal::Answer {
        event: claimed.due[0].key.event,
        answer: b"\x00raw bytes\xff".to_vec(),
    };
    a.broadcast(answer.clone()).await.expect("broadcast");
    let heard = tokio::time::timeout(patience(), signals.recv())
        .await
        .expect("a signal from A reaches B")
        .expect("signal");
    assert_eq!(heard, answer);

    let info = serde_json::json!({"id": "agent-1", "group": "g"});
    a.announce_agent(t, "agent-1", &info)
        .await
        .expect("announce");
    let listed = b.cluster_agents(t).await.expect("agents").expect("a list");
    assert_eq!(listed, vec![info]);

    drop(a);
    wait_until(patience(), "B gets A's claims back", || async {
        let due = b
            .due_deliveries(t, bk, Some("g"), store::clock::now_ms(), 100)
            .await
            .expect("due on B");
        due.due.len() == 4
    })
    .await;
    let agents = b.cluster_agents(t).await.expect("agents").expect("a list");
    assert!(
        agents.is_empty(),
        "a dead node's agents are gone: {agents:?}"
    );
    b.close().await;
    cleanup(&ns).await;
}

/// `close` gives this node's claims back at once, public ones included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_gives_claims_back() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "close").await;
    let mut public = store::conformance::output_in(&w.bucket);
    public.internal = false;
    a.create_output(&public).await.expect("public output");
    let (t, bk) = (&w.tenant, &w.bucket.id);
    a.register_group(t, bk, "g", 0, i64::MAX)
        .await
        .expect("register");
    let e = a.append(w.event()).await.expect("append");
    let now = store::clock::now_ms();
    assert_eq!(
        a.due_deliveries(t, bk, Some("g"), now, 100)
            .await
            .expect("due")
            .due
            .len(),
        2
    );
    let ours = |batch: store::DueBatch| batch.due.iter().filter(|d| d.key.tenant == *t).count();
    assert_eq!(
        ours(a.due_public_deliveries(now, 100).await.expect("public")),
        1
    );
    assert_eq!(
        ours(b.due_public_deliveries(now, 100).await.expect("public")),
        0
    );
    a.close().await;
    assert!(matches!(a.ping().await, Err(Error::Unavailable(_))));
    let due = b
        .due_deliveries(t, bk, Some("g"), now, 100)
        .await
        .expect("due on B");
    assert_eq!(due.due.len(), 2, "claims come back at close");
    let public_due = b.due_public_deliveries(now, 100).await.expect("public");
    assert_eq!(ours(public_due.clone()), 1);
    for d in due
        .due
        .iter()
        .chain(public_due.due.iter().filter(|d| d.key.tenant == *t))
    {
        b.settle(&d.key, None, Settle::Delivered)
            .await
            .expect("settle on B");
    }
    let (_, deliveries) = b.event(t, &e.id).await.expect("event");
    assert!(deliveries
        .iter()
        .all(|d| d.state == model::DeliveryState::Delivered));
    b.close().await;
    cleanup(&ns).await;
}

/// A live node's claims that it never marks in flight go back to the queue
/// after their lease, for any node to take.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsent_claims_return_after_their_lease() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "lease").await;
    let (t, bk) = (&w.tenant, &w.bucket.id);
    a.register_group(t, bk, "g", 0, i64::MAX)
        .await
        .expect("register");
    a.append(w.event()).await.expect("append");
    let now = store::clock::now_ms();
    let claimed = a
        .due_deliveries(t, bk, Some("g"), now, 100)
        .await
        .expect("due");
    assert_eq!(claimed.due.len(), 2);
    a.mark_in_flight(&[claimed.due[0].key.clone()])
        .await
        .expect("mark one");
    wait_until(patience(), "B gets the unmarked claim", || async {
        let due = b
            .due_deliveries(t, bk, Some("g"), store::clock::now_ms(), 100)
            .await
            .expect("due on B");
        due.due.len() == 1 && due.due[0].key == claimed.due[1].key
    })
    .await;
    a.ping().await.expect("A is alive all along");
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// Group `None` names a bucket's public rows: claimed like the others, and
/// only that bucket's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buckets_public_rows_by_group_none() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "public-bucket").await;
    let other = store::conformance::bucket_in(&w.tenant, "other");
    a.create_bucket(&other).await.expect("bucket");
    let other_input = store::conformance::input_in(&other, None);
    a.create_input(&other_input).await.expect("input");
    for bucket in [&w.bucket, &other] {
        let mut public = store::conformance::output_in(bucket);
        public.internal = false;
        a.create_output(&public).await.expect("public output");
    }
    let e = a.append(w.event()).await.expect("append");
    a.append(store::conformance::event_for(&other_input))
        .await
        .expect("append");
    let now = store::clock::now_ms();
    let due = a
        .due_deliveries(&w.tenant, &w.bucket.id, None, now, 10)
        .await
        .expect("due");
    assert_eq!(due.due.len(), 1);
    assert_eq!(
        (due.due[0].key.event, due.due[0].output.internal),
        (e.id, false)
    );
    let on_b = b
        .due_deliveries(&w.tenant, &w.bucket.id, None, now, 10)
        .await
        .expect("due on B");
    assert!(on_b.due.is_empty(), "claimed by A");
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}

/// Deleting an output takes its queued deliveries along, as SQLite does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_output_takes_its_queued_rows() {
    let ns = namespace();
    let (a, b) = two_nodes(&ns).await;
    let w = World::create(&a, "delete-output").await;
    let (t, bk) = (&w.tenant, &w.bucket.id);
    a.register_group(t, bk, "g", 0, i64::MAX)
        .await
        .expect("register");
    let e = a.append(w.event()).await.expect("append");
    a.delete_output(t, &w.outputs[0].id).await.expect("delete");
    let (_, deliveries) = b.event(t, &e.id).await.expect("event");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].output, w.outputs[1].id);
    a.close().await;
    b.close().await;
    cleanup(&ns).await;
}
