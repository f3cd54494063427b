//! Conformance checks across objects: tenant isolation and the cascading
//! deletes of tenants and buckets.

use std::sync::Arc;

use model::TokenScope;

use super::{assert_not_found, bucket_in, input_in, token_in, World};
use crate::{Cursor, EventQuery, Store};

/// Tenant B cannot read, change or delete anything of tenant A, even
/// knowing every id.
pub async fn tenant_isolation(store: &Arc<dyn Store>) {
    let a = World::create(store, "iso-a").await;
    let b = World::create(store, "iso-b").await;
    let token = token_in(&a.tenant, TokenScope::Poll);
    store.create_token(&token).await.expect("create token");
    let mut new_event = a.event();
    new_event.delivery_id = Some("d-1".into());
    let event = store.append(new_event).await.expect("append");
    let bt = &b.tenant;

    assert_not_found(store.bucket(bt, &a.bucket.id).await, "bucket");
    // B has a bucket named "main" too: the name resolves to B's own.
    let own = store
        .bucket_by_name(bt, "main")
        .await
        .expect("bucket by name");
    assert_eq!(own.id, b.bucket.id);
    assert_not_found(store.input(bt, &a.input.id).await, "input");
    assert!(store
        .list_inputs(bt, &a.bucket.id)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_outputs(bt, &a.bucket.id)
        .await
        .expect("list")
        .is_empty());
    assert_not_found(store.output(bt, &a.outputs[0].id).await, "output");
    assert!(store
        .list_tokens(bt)
        .await
        .expect("list")
        .iter()
        .all(|t| t.key != token.key));
    assert_not_found(store.event(bt, &event.id).await, "event");
    let all = EventQuery {
        from: Cursor::Start,
        buckets: vec![a.bucket.id.clone()],
        limit: 100,
    };
    assert!(store.events(bt, &all).await.expect("events").is_empty());
    assert_not_found(
        store.reset_deliveries(bt, &event.id, None).await,
        "reset deliveries",
    );
    assert!(!store
        .delivery_seen(bt, &a.input.id, "d-1", super::now())
        .await
        .expect("seen"));

    let mut bucket = a.bucket.clone();
    bucket.tenant = bt.clone();
    bucket.name = "stolen".into();
    assert_not_found(store.update_bucket(&bucket).await, "update bucket");
    let mut input = a.input.clone();
    input.tenant = bt.clone();
    input.name = Some("stolen".into());
    assert_not_found(store.update_input(&input).await, "update input");
    let mut output = a.outputs[0].clone();
    output.tenant = bt.clone();
    assert_not_found(store.update_output(&output).await, "update output");
    let mut stolen = token.clone();
    stolen.tenant = bt.clone();
    assert_not_found(store.update_token(&stolen).await, "update token");
    let mut event_b = a.event();
    event_b.tenant = bt.clone();
    assert_not_found(
        store.append(event_b).await,
        "append into another tenant's bucket",
    );

    assert_not_found(store.delete_bucket(bt, &a.bucket.id).await, "delete bucket");
    assert_not_found(store.delete_input(bt, &a.input.id).await, "delete input");
    assert_not_found(
        store.delete_output(bt, &a.outputs[0].id).await,
        "delete output",
    );
    assert_not_found(store.delete_token(bt, &token.key).await, "delete token");

    // A is untouched.
    let at = &a.tenant;
    assert_eq!(
        store.bucket(at, &a.bucket.id).await.expect("bucket").name,
        "main"
    );
    assert_eq!(
        store
            .input(at, &a.input.id)
            .await
            .expect("input")
            .name
            .as_deref(),
        Some("hook")
    );
    store.output(at, &a.outputs[0].id).await.expect("output");
    assert_eq!(
        store.token_by_key(&token.key).await.expect("token").tenant,
        *at
    );
    assert_eq!(store.event(at, &event.id).await.expect("event").1.len(), 2);
}

/// `delete_tenant` leaves nothing behind, and the id can start afresh.
pub async fn delete_tenant_removes_everything(store: &Arc<dyn Store>) {
    let w = World::create(store, "doomed").await;
    let token = token_in(&w.tenant, TokenScope::Tenant);
    store.create_token(&token).await.expect("create token");
    let mut e = w.event();
    e.delivery_id = Some("once".into());
    let event = store.append(e).await.expect("append");
    store.delete_tenant(&w.tenant).await.expect("delete tenant");

    assert_not_found(store.tenant(&w.tenant).await, "tenant");
    assert_not_found(store.bucket(&w.tenant, &w.bucket.id).await, "bucket");
    assert_not_found(store.input_by_id(&w.input.id).await, "input");
    assert_not_found(store.output(&w.tenant, &w.outputs[0].id).await, "output");
    assert_not_found(store.token_by_key(&token.key).await, "token");
    assert_not_found(store.event(&w.tenant, &event.id).await, "event");
    assert!(!store
        .delivery_seen(&w.tenant, &w.input.id, "once", super::now())
        .await
        .expect("seen"));

    store
        .create_tenant(&super::tenant_record(w.tenant.clone()))
        .await
        .expect("recreate");
    assert!(store
        .list_buckets(&w.tenant)
        .await
        .expect("buckets")
        .is_empty());
    assert!(store
        .list_tokens(&w.tenant)
        .await
        .expect("tokens")
        .is_empty());
    let all = EventQuery {
        from: Cursor::Start,
        buckets: Vec::new(),
        limit: 100,
    };
    assert!(store
        .events(&w.tenant, &all)
        .await
        .expect("events")
        .is_empty());
}

/// `delete_bucket` takes its inputs, outputs, events and deliveries along,
/// and leaves the tenant's other buckets alone.
pub async fn delete_bucket_removes_its_children(store: &Arc<dyn Store>) {
    let w = World::create(store, "bucket-children").await;
    let keep = bucket_in(&w.tenant, "keep");
    store.create_bucket(&keep).await.expect("create bucket");
    let keep_input = input_in(&keep, None);
    store.create_input(&keep_input).await.expect("create input");
    let gone = store.append(w.event()).await.expect("append");
    let kept = store
        .append(super::event_for(&keep_input))
        .await
        .expect("append");

    store
        .delete_bucket(&w.tenant, &w.bucket.id)
        .await
        .expect("delete bucket");
    assert_not_found(store.input_by_id(&w.input.id).await, "input of the bucket");
    assert_not_found(
        store.output(&w.tenant, &w.outputs[0].id).await,
        "output of the bucket",
    );
    assert_not_found(
        store.event(&w.tenant, &gone.id).await,
        "event of the bucket",
    );
    // Deliveries are only reachable through their event, so this is as far
    // as the trait can look; tests/sqlite/ also counts the rows.
    assert_not_found(
        store.reset_deliveries(&w.tenant, &gone.id, None).await,
        "deliveries of the bucket's event",
    );
    let all = EventQuery {
        from: Cursor::Start,
        buckets: Vec::new(),
        limit: 100,
    };
    let left: Vec<_> = store
        .events(&w.tenant, &all)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, [kept.id]);
}
