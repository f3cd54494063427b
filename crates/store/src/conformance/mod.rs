//! The conformance suite every [`Store`] backend must pass (feature
//! `test-suite`). It speaks only the traits, so SQLite and Redis run the very
//! same checks.
//!
//! Each check makes its own tenants with unique ids, so checks can share one
//! store (and one Redis) without seeing each other; only
//! [`close_refuses_later_calls`] ends the store. Checks panic on failure,
//! like any test; [`conformance_tests!`](crate::conformance_tests) makes each
//! one its own test for a backend.
//!
//! # Layout
//! - `mod.rs`: `conformance_tests!` and the fixtures (objects with sensible
//!   defaults).
//! - `objects`: CRUD of tenants, buckets, inputs, outputs and tokens.
//! - `feed`: object writes tick the configuration feed.
//! - `isolation`: tenant isolation and cascading deletes.
//! - `events`: append, order, dedup, ephemeral events, deliveries.
//! - `dispatch`: agent groups, due queues, settling, expiry.
//! - `reads`: cursors, retention, visibility, commit ticks, polling.
//! - `tunnels`: tunnel objects, their server-wide names.
//! - `channels`: smee and gosmee channels, found by capability digest.
//! - `functions`: function objects, their sealed config.

mod channels;
mod dispatch;
mod events;
mod feed;
mod functions;
mod isolation;
mod objects;
mod reads;
mod tunnels;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use model::{
    Bucket, BucketAuth, BucketId, Event, EventBody, EventId, Input, InputId, NewEvent, Output,
    OutputId, ResponsePolicy, RetryPolicy, Secret, Tenant, TenantId, Token, TokenKey, TokenScope,
};

use crate::{Appended, Cursor, Error, EventQuery, Result, Store, TenantRecord};

pub use channels::channels;
pub use dispatch::{
    abandoned_groups_stop_growing, expiry_spares_the_catchup_window,
    groups_share_nothing_and_miss_nothing, public_outputs_queue_for_the_server, settle_and_retry,
    settle_batch_settles_each,
};
pub use events::{
    append_round_trip, concurrent_appends_are_ordered, dedup, deliveries_and_reset,
    ephemeral_events, marked_events_have_no_deliveries, sequential_order,
};
pub use feed::object_writes_tick_the_config_feed;
pub use functions::functions;
pub use isolation::{
    delete_bucket_removes_its_children, delete_tenant_removes_everything, tenant_isolation,
};
pub use objects::{buckets, inputs, outputs, tenants, tokens};
pub use reads::{
    cursors, newest_first_cursors, polling_never_misses, purge_respects_retention,
    visibility_and_commits,
};
pub use tunnels::tunnels;

/// Instantiates the whole suite for one backend, one `#[tokio::test]` per
/// check, so a failing check hides none of the others. `open` is an async
/// fn returning `(Arc<dyn Store>, handle)`: a fresh store per check;
/// `finish` is an async fn taking the handle back once the check passed
/// (to delete a Redis namespace, say). Invoke it inside a module:
///
/// ```text
/// mod conformance {
///     store::conformance_tests!(open = super::open_fresh, finish = super::finish);
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (open = $open:path, finish = $finish:path $(,)?) => {
        $crate::conformance_tests!(@each $open, $finish;
            tenants, buckets, inputs, outputs, tokens, object_writes_tick_the_config_feed, tunnels,
            functions, channels,
            tenant_isolation, delete_tenant_removes_everything,
            delete_bucket_removes_its_children,
            append_round_trip, sequential_order, concurrent_appends_are_ordered, dedup,
            ephemeral_events, marked_events_have_no_deliveries, cursors, newest_first_cursors,
            deliveries_and_reset,
            groups_share_nothing_and_miss_nothing, settle_and_retry, settle_batch_settles_each,
            expiry_spares_the_catchup_window, abandoned_groups_stop_growing,
            public_outputs_queue_for_the_server,
            purge_respects_retention, visibility_and_commits, polling_never_misses,
            close_refuses_later_calls,
        );
    };
    (@each $open:path, $finish:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, handle) = $open().await;
                $crate::conformance::$check(&store).await;
                drop(store);
                $finish(handle).await;
            }
        )*
    };
}

/// After `close`, writes and reads fail `Unavailable`.
pub async fn close_refuses_later_calls(store: &Arc<dyn Store>) {
    let world = World::create(store, "close").await;
    store.close().await;
    assert_unavailable(store.append(world.event()).await, "append after close");
    assert_unavailable(
        store.create_tenant(&tenant_record(unique("late"))).await,
        "create_tenant after close",
    );
    assert_unavailable(store.tenant(&world.tenant).await, "read after close");
}

// ---- fixtures, public so a backend's own tests can reuse them ----

/// A tenant id no other check (or earlier run on a shared Redis) uses.
pub fn unique(label: &str) -> TenantId {
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    format!("{label}-{suffix}")
        .parse()
        .expect("labels are short lowercase slugs, and a ULID is alphanumeric")
}

pub fn now() -> i64 {
    crate::clock::now_ms()
}

pub fn tenant_record(id: TenantId) -> TenantRecord {
    TenantRecord {
        tenant: Tenant {
            label: format!("Tenant {id}"),
            id,
            enabled: true,
            created_at: now(),
        },
        poll_secret_hash: None,
    }
}

pub fn bucket_in(tenant: &TenantId, name: &str) -> Bucket {
    Bucket {
        id: BucketId::generate(),
        tenant: tenant.clone(),
        name: name.into(),
        auth: BucketAuth::None,
        ephemeral: false,
        retention_seconds: Bucket::DEFAULT_RETENTION_SECONDS,
        catchup_seconds: Bucket::DEFAULT_CATCHUP_SECONDS,
        enabled: true,
        created_at: now(),
    }
}

pub fn input_in(bucket: &Bucket, name: Option<&str>) -> Input {
    Input {
        id: InputId::generate(),
        tenant: bucket.tenant.clone(),
        bucket: bucket.id.clone(),
        name: name.map(str::to_owned),
        integration: None,
        generic_hmac: None,
        secrets: Vec::new(),
        response: ResponsePolicy::Default,
        enabled: true,
        body_limit: None,
        rate_limit: None,
        timestamp_tolerance_seconds: Input::DEFAULT_TIMESTAMP_TOLERANCE_SECONDS,
        handshakes: true,
        function_id: None,
        created_at: now(),
    }
}

pub fn output_in(bucket: &Bucket) -> Output {
    Output {
        id: OutputId::generate(),
        tenant: bucket.tenant.clone(),
        bucket: bucket.id.clone(),
        url: "http://hooks.internal.example/hook".into(),
        internal: true,
        timeout_ms: 10_000,
        headers: BTreeMap::new(),
        retry: RetryPolicy::default(),
        concurrency: Output::DEFAULT_CONCURRENCY,
        ordered: false,
        function_id: None,
        created_at: now(),
    }
}

pub fn token_in(tenant: &TenantId, scope: TokenScope) -> Token {
    Token {
        key: TokenKey::generate(),
        tenant: tenant.clone(),
        scope,
        buckets: Vec::new(),
        mode: None,
        description: "conformance".into(),
        secret_hash: Secret::new("$2b$10$abcdefghijklmnopqrstuuv0123456789abcdefghijklmnopqrs"),
        created_at: now(),
    }
}

pub fn event_for(input: &Input) -> NewEvent {
    NewEvent {
        tenant: input.tenant.clone(),
        bucket: input.bucket.clone(),
        input: input.id,
        integration: None,
        method: "POST".into(),
        path: "/extra".into(),
        query: "a=1".into(),
        headers: vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("x-b".into(), b"1".to_vec()),
            ("x-a".into(), b"2".to_vec()),
            ("x-b".into(), b"3".to_vec()),
            // Stored byte-exact, not UTF-8 (DESIGN §8).
            ("x-raw".into(), b"\xff\xfe".to_vec()),
        ],
        body: EventBody::Stored(b"{\"hello\":\"world\"}".to_vec()),
        client_ip: "203.0.113.7".into(),
        delivery_id: None,
        event_type: Some("push".into()),
        event_count: 1,
        verified: false,
        marks: Default::default(),
        forwarded: None,
        dedup_window_ms: 300_000,
    }
}

/// A tenant with one bucket, one input and two outputs.
pub struct World {
    pub tenant: TenantId,
    pub bucket: Bucket,
    pub input: Input,
    pub outputs: Vec<Output>,
}

impl World {
    pub async fn create(store: &Arc<dyn Store>, label: &str) -> World {
        let tenant = unique(label);
        store
            .create_tenant(&tenant_record(tenant.clone()))
            .await
            .expect("create tenant");
        let bucket = bucket_in(&tenant, "main");
        store.create_bucket(&bucket).await.expect("create bucket");
        let input = input_in(&bucket, Some("hook"));
        store.create_input(&input).await.expect("create input");
        let mut outputs = Vec::new();
        for _ in 0..2 {
            let output = output_in(&bucket);
            store.create_output(&output).await.expect("create output");
            outputs.push(output);
        }
        World {
            tenant,
            bucket,
            input,
            outputs,
        }
    }

    pub fn event(&self) -> NewEvent {
        event_for(&self.input)
    }
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T>, field: &str, what: &str) {
    match result {
        Err(Error::Conflict(f)) if f == field => {}
        other => panic!("{what}: expected Conflict({field:?}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_unavailable<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

// ---- shared by the checks ----

/// Bound on every wait in this suite, so a broken store fails instead of
/// hanging CI.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) fn query(from: Cursor, limit: usize) -> EventQuery {
    EventQuery {
        from,
        buckets: Vec::new(),
        limit,
    }
}

pub(crate) fn ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Appends `n` events concurrently, one task each.
pub(crate) async fn append_concurrently(
    store: &Arc<dyn Store>,
    event: &NewEvent,
    n: usize,
) -> Vec<Appended> {
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
