//! Checks of delivery dispatch: agent groups, the due queues, in-flight
//! marks, settling, retries, catch-up expiry and the public queue.

use std::sync::Arc;

use model::{Attempt, DeliveryState, EventId};

use super::{output_in, World};
use crate::{DeliveryKey, DueDelivery, Settle, Store};

fn keys(due: &[DueDelivery]) -> Vec<(EventId, String)> {
    due.iter()
        .map(|d| (d.key.event, d.output.id.to_string()))
        .collect()
}

fn attempt(status: u16) -> Attempt {
    Attempt {
        at: crate::clock::now_ms(),
        status: Some(status),
        latency_ms: 3,
        error: None,
    }
}

async fn states(store: &Arc<dyn Store>, w: &World, event: &EventId) -> Vec<DeliveryState> {
    let (_, deliveries) = store.event(&w.tenant, event).await.expect("read event");
    deliveries.iter().map(|d| d.state).collect()
}

/// The first group of a bucket takes over what waited for any group, in
/// event order; a second group gets its own copy of the catch-up window.
pub async fn groups_share_nothing_and_miss_nothing(store: &Arc<dyn Store>) {
    let w = World::create(store, "groups").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    let first = store.append(w.event()).await.expect("append");
    let second = store.append(w.event()).await.expect("append");
    let now = crate::clock::now_ms();

    let none = store
        .due_deliveries(t, b, Some("blue"), now, 100)
        .await
        .expect("due before registering");
    assert!(none.due.is_empty(), "an unregistered group gets nothing");

    store
        .register_group(t, b, "blue", 0, i64::MAX)
        .await
        .expect("register blue");
    let blue = store
        .due_deliveries(t, b, Some("blue"), now, 100)
        .await
        .expect("due for blue");
    let mut expected = Vec::new();
    for event in [first.id, second.id] {
        for output in &w.outputs {
            expected.push((event, output.id.to_string()));
        }
    }
    let mut got = keys(&blue.due);
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "blue inherits every waiting delivery");
    assert!(blue
        .due
        .windows(2)
        .all(|p| p[0].key.event <= p[1].key.event));
    assert!(blue
        .due
        .iter()
        .all(|d| d.key.group.as_deref() == Some("blue")));

    // Registering again changes nothing.
    store
        .register_group(t, b, "blue", 0, i64::MAX)
        .await
        .expect("register blue again");
    let again = store
        .due_deliveries(t, b, Some("blue"), now, 100)
        .await
        .expect("due");
    assert_eq!(again.due.len(), 4);

    // A second group: a catch-up window that holds only the second event.
    store
        .register_group(t, b, "green", second.received_at, i64::MAX)
        .await
        .expect("register green");
    let green = store
        .due_deliveries(t, b, Some("green"), now, 100)
        .await
        .expect("due for green");
    // Two appends may share a millisecond: the window then holds both.
    let in_window = if first.received_at == second.received_at {
        2
    } else {
        1
    };
    assert!(green
        .due
        .iter()
        .all(|d| d.key.event == second.id || in_window == 2));
    assert_eq!(green.due.len(), 2 * in_window);

    // A later event goes to both groups.
    let third = store.append(w.event()).await.expect("append");
    let now = crate::clock::now_ms();
    for group in ["blue", "green"] {
        let due = store
            .due_deliveries(t, b, Some(group), now, 100)
            .await
            .expect("due");
        assert_eq!(
            due.due.iter().filter(|d| d.key.event == third.id).count(),
            2,
            "{group} gets the third event once per output"
        );
    }
    assert_eq!(states(store, &w, &third.id).await.len(), 4);
}

/// A world whose group `g` has one event's two deliveries in flight: the
/// world, the event, the two delivery keys and the time they were due.
async fn one_event_in_flight(
    store: &Arc<dyn Store>,
    name: &str,
) -> (World, crate::Appended, [DeliveryKey; 2], i64) {
    let w = World::create(store, name).await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    store
        .register_group(t, b, "g", 0, i64::MAX)
        .await
        .expect("register");
    let a = store.append(w.event()).await.expect("append");
    let now = crate::clock::now_ms();
    let due = store
        .due_deliveries(t, b, Some("g"), now, 100)
        .await
        .expect("due");
    assert_eq!(due.due.len(), 2);
    let (k0, k1) = (due.due[0].key.clone(), due.due[1].key.clone());
    store
        .mark_in_flight(&[k0.clone(), k1.clone()])
        .await
        .expect("mark");
    (w, a, [k0, k1], now)
}

/// In-flight deliveries leave the queue; settling moves them on, retries
/// come back when due, and resend starts over.
pub async fn settle_and_retry(store: &Arc<dyn Store>) {
    let (w, a, [k0, k1], now) = one_event_in_flight(store, "settle").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    assert_eq!(
        states(store, &w, &a.id).await,
        vec![DeliveryState::InFlight; 2]
    );
    let empty = store
        .due_deliveries(t, b, Some("g"), now, 100)
        .await
        .expect("due");
    assert!(empty.due.is_empty(), "in-flight deliveries are not due");

    store
        .settle(&k0, Some(attempt(200)), Settle::Delivered)
        .await
        .expect("delivered");
    let later = now + 60_000;
    store
        .settle(&k1, Some(attempt(500)), Settle::RetryAt(later))
        .await
        .expect("retry");
    let waiting = store
        .due_deliveries(t, b, Some("g"), now, 100)
        .await
        .expect("due");
    assert!(waiting.due.is_empty());
    assert_eq!(
        waiting.next_at,
        Some(later),
        "the caller learns when to look"
    );
    let retry = store
        .due_deliveries(t, b, Some("g"), later, 100)
        .await
        .expect("due later");
    assert_eq!(retry.due.len(), 1);
    assert_eq!(retry.due[0].key, k1);
    assert_eq!(retry.due[0].tries, 1);

    let (_, deliveries) = store.event(t, &a.id).await.expect("read");
    let retried = deliveries
        .iter()
        .find(|d| d.output == k1.output)
        .expect("k1");
    assert_eq!(retried.attempts.len(), 1);
    assert_eq!(retried.attempts[0].status, Some(500));

    store
        .settle(&k1, Some(attempt(400)), Settle::Failed)
        .await
        .expect("failed");
    assert_eq!(
        store.reset_deliveries(t, &a.id, None).await.expect("reset"),
        2
    );
    let resent = store
        .due_deliveries(t, b, Some("g"), now, 100)
        .await
        .expect("due after resend");
    assert_eq!(resent.due.len(), 2);
    assert!(resent.due.iter().all(|d| d.tries == 0));

    // Released: pending at once, no try counted.
    store
        .mark_in_flight(std::slice::from_ref(&k0))
        .await
        .expect("mark");
    store
        .settle(&k0, None, Settle::Released)
        .await
        .expect("release");
    let back = store
        .due_deliveries(t, b, Some("g"), now, 100)
        .await
        .expect("due");
    assert_eq!(back.due.len(), 2);

    // A late release (its agent went away after the ack) undoes nothing.
    store
        .mark_in_flight(std::slice::from_ref(&k0))
        .await
        .expect("mark");
    store
        .settle(&k0, Some(attempt(200)), Settle::Delivered)
        .await
        .expect("delivered");
    store
        .settle(&k0, None, Settle::Released)
        .await
        .expect("a late release is accepted");
    let (_, deliveries) = store.event(t, &a.id).await.expect("read");
    let k0_state = deliveries
        .iter()
        .find(|d| d.output == k0.output)
        .map(|d| d.state);
    assert_eq!(k0_state, Some(DeliveryState::Delivered));

    let unknown = DeliveryKey {
        event: EventId::floor_at(1),
        ..k0
    };
    assert!(matches!(
        store.settle(&unknown, None, Settle::Delivered).await,
        Err(crate::Error::NotFound)
    ));
}

/// Catch-up expiry touches only deliveries pending since before the cut.
pub async fn expiry_spares_the_catchup_window(store: &Arc<dyn Store>) {
    let w = World::create(store, "expiry").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    store
        .register_group(t, b, "g", 0, i64::MAX)
        .await
        .expect("register");
    let old = store.append(w.event()).await.expect("append");
    let young = store.append(w.event()).await.expect("append");
    let expired = store
        .expire_deliveries(t, b, "g", young.received_at)
        .await
        .expect("expire");
    let expected = if old.received_at < young.received_at {
        2
    } else {
        0
    };
    assert_eq!(expired, expected);
    if expected == 2 {
        assert_eq!(
            states(store, &w, &old.id).await,
            vec![DeliveryState::Expired; 2]
        );
    }
    assert_eq!(
        states(store, &w, &young.id).await,
        vec![DeliveryState::Pending; 2]
    );
    // Another group's deliveries are untouched.
    assert_eq!(
        store
            .expire_deliveries(t, b, "other", i64::MAX)
            .await
            .expect("expire other"),
        0
    );
}

/// Public outputs wait in the server's own queue, not an agent group's.
pub async fn public_outputs_queue_for_the_server(store: &Arc<dyn Store>) {
    let w = World::create(store, "public").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    let mut public = output_in(&w.bucket);
    public.internal = false;
    store.create_output(&public).await.expect("public output");
    store
        .register_group(t, b, "g", 0, i64::MAX)
        .await
        .expect("register");
    let a = store.append(w.event()).await.expect("append");
    let now = crate::clock::now_ms();
    let agents = store
        .due_deliveries(t, b, Some("g"), now, 100)
        .await
        .expect("due");
    assert!(agents.due.iter().all(|d| d.output.internal));
    assert_eq!(agents.due.len(), 2);
    let server = store
        .due_public_deliveries(now, 10_000)
        .await
        .expect("due public");
    let ours: Vec<_> = server.due.iter().filter(|d| d.key.tenant == *t).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].key.event, a.id);
    assert_eq!(ours[0].output.id, public.id);
    assert_eq!(ours[0].key.group, None);

    // A deleted output's unfinished deliveries leave the queue.
    store.delete_output(t, &public.id).await.expect("delete");
    let after = store
        .due_public_deliveries(now, 10_000)
        .await
        .expect("due public");
    assert!(after.due.iter().all(|d| d.key.tenant != *t));
}

/// The states of an event's deliveries for one group, sorted.
async fn states_of(
    store: &Arc<dyn Store>,
    w: &World,
    event: &EventId,
    group: &str,
) -> Vec<DeliveryState> {
    let (_, deliveries) = store.event(&w.tenant, event).await.expect("read event");
    let mut states: Vec<DeliveryState> = deliveries
        .iter()
        .filter(|d| d.group.as_deref() == Some(group))
        .map(|d| d.state)
        .collect();
    states.sort_by_key(|s| format!("{s:?}"));
    states
}

/// A group whose live-until time passed is abandoned (DESIGN §13): its
/// pending deliveries expire, retries in backoff too, and later events get
/// none for it, while a live group's are untouched. A renewal never makes
/// a group's life shorter. A group that comes back is live again: it gets
/// the events of its catch-up window it has no delivery of, keeps its
/// expired ones expired, and a resend by hand brings those back.
pub async fn abandoned_groups_stop_growing(store: &Arc<dyn Store>) {
    use DeliveryState::{Expired, Pending};
    let w = World::create(store, "abandon").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    let now = crate::clock::now_ms();
    store
        .register_group(t, b, "gone", 0, now + 1_000)
        .await
        .expect("register gone");
    store
        .register_group(t, b, "stays", 0, now + 1_000)
        .await
        .expect("register stays");
    // A shorter renewal changes nothing; a longer one keeps `stays` live.
    store
        .register_group(t, b, "gone", 0, now)
        .await
        .expect("renew gone");
    store
        .register_group(t, b, "stays", 0, now + 3_600_000)
        .await
        .expect("renew stays");
    let first = store.append(w.event()).await.expect("append");

    // One of `gone`'s deliveries waits out a retry's backoff.
    let due = store
        .due_deliveries(t, b, Some("gone"), crate::clock::now_ms(), 100)
        .await
        .expect("due");
    assert_eq!(due.due.len(), 2);
    let (k0, k1) = (due.due[0].key.clone(), due.due[1].key.clone());
    store
        .mark_in_flight(&[k0.clone(), k1.clone()])
        .await
        .expect("mark");
    store
        .settle(&k0, Some(attempt(503)), Settle::RetryAt(now + 600_000))
        .await
        .expect("retry");
    store
        .settle(&k1, None, Settle::Released)
        .await
        .expect("release");

    assert_eq!(
        store.abandon_groups(now + 999).await.expect("abandon"),
        0,
        "both groups are live until now + 1 s"
    );
    assert_eq!(
        store.abandon_groups(now + 2_000).await.expect("abandon"),
        1,
        "only `gone` lapsed"
    );
    assert_eq!(
        states_of(store, &w, &first.id, "gone").await,
        vec![Expired; 2]
    );
    assert_eq!(
        states_of(store, &w, &first.id, "stays").await,
        vec![Pending; 2]
    );
    let far = now + 3_600_000;
    let nothing = store
        .due_deliveries(t, b, Some("gone"), far, 100)
        .await
        .expect("due");
    assert!(nothing.due.is_empty(), "an abandoned group has nothing due");
    assert_eq!(nothing.next_at, None, "nor a retry to wait for");
    assert_eq!(
        store
            .abandon_groups(now + 2_000)
            .await
            .expect("abandon again"),
        0,
        "abandoning is done once"
    );

    let second = store.append(w.event()).await.expect("append");
    assert!(states_of(store, &w, &second.id, "gone").await.is_empty());
    assert_eq!(
        states_of(store, &w, &second.id, "stays").await,
        vec![Pending; 2]
    );

    // Back within the window of both events: the second is delivered, the
    // first stays expired.
    store
        .register_group(t, b, "gone", 0, far)
        .await
        .expect("come back");
    assert_eq!(
        states_of(store, &w, &first.id, "gone").await,
        vec![Expired; 2]
    );
    assert_eq!(
        states_of(store, &w, &second.id, "gone").await,
        vec![Pending; 2]
    );
    let third = store.append(w.event()).await.expect("append");
    assert_eq!(
        states_of(store, &w, &third.id, "gone").await,
        vec![Pending; 2]
    );
    let back = store
        .due_deliveries(t, b, Some("gone"), crate::clock::now_ms(), 100)
        .await
        .expect("due");
    let events: Vec<EventId> = back.due.iter().map(|d| d.key.event).collect();
    assert_eq!(events, vec![second.id, second.id, third.id, third.id]);

    // A resend by hand brings the expired ones back.
    store
        .reset_deliveries(t, &first.id, None)
        .await
        .expect("resend");
    assert_eq!(
        states_of(store, &w, &first.id, "gone").await,
        vec![Pending; 2]
    );
}

/// A batch of settlements does what each would do alone, and skips a
/// delivery that does not exist.
pub async fn settle_batch_settles_each(store: &Arc<dyn Store>) {
    use crate::Settlement;
    let (w, a, [k0, k1], now) = one_event_in_flight(store, "batch").await;
    let (t, b) = (&w.tenant, &w.bucket.id);
    let mut unknown = k0.clone();
    unknown.event = EventId::floor_at(1);
    let later = now + 60_000;
    let batch = [
        Settlement {
            key: k0.clone(),
            attempt: Some(attempt(200)),
            next: Settle::Delivered,
        },
        Settlement {
            key: unknown,
            attempt: None,
            next: Settle::Delivered,
        },
        Settlement {
            key: k1.clone(),
            attempt: Some(attempt(503)),
            next: Settle::RetryAt(later),
        },
    ];
    store.settle_batch(&batch).await.expect("settle batch");
    let (_, deliveries) = store.event(t, &a.id).await.expect("read");
    let of = |k: &crate::DeliveryKey| {
        deliveries
            .iter()
            .find(|d| d.output == k.output)
            .expect("delivery")
    };
    assert_eq!(of(&k0).state, DeliveryState::Delivered);
    assert_eq!(of(&k1).state, DeliveryState::Pending);
    assert_eq!(of(&k1).attempts.len(), 1);
    let retry = store
        .due_deliveries(t, b, Some("g"), later, 100)
        .await
        .expect("due later");
    assert_eq!(retry.due.len(), 1);
    assert_eq!(retry.due[0].key, k1);
    assert_eq!(retry.due[0].tries, 1);
}
