//! Conformance of the configuration feed ([`crate::ClusterBus::config_changes`]):
//! every object write (tunnels included) ticks it before returning, so that a cache checking
//! it on each use is never stale after a write; reads, refused writes and
//! event traffic leave it alone, so that ingest keeps its cache.

use std::sync::Arc;

use model::TokenScope;
use tokio::sync::watch;

use super::tunnels::{fresh_name, tunnel_in};
use super::{bucket_in, input_in, output_in, tenant_record, token_in, unique, World};
use crate::{Error, Store};

/// Asserts the feed ticked since the last look, and looks again.
#[track_caller]
fn ticked(feed: &mut watch::Receiver<u64>, what: &str) {
    assert!(
        feed.has_changed().expect("the store holds the sender"),
        "{what} ticks the configuration feed"
    );
    feed.borrow_and_update();
}

#[track_caller]
fn still(feed: &watch::Receiver<u64>, what: &str) {
    assert!(
        !feed.has_changed().expect("the store holds the sender"),
        "{what} leaves the configuration feed alone"
    );
}

/// Each object write ticks the feed; reads, refusals and events do not.
pub async fn object_writes_tick_the_config_feed(store: &Arc<dyn Store>) {
    let mut feed = store.config_changes();
    feed.borrow_and_update();
    let id = unique("feed");
    let record = tenant_record(id.clone());
    store.create_tenant(&record).await.expect("create tenant");
    ticked(&mut feed, "create_tenant");
    store.update_tenant(&record.tenant).await.expect("update");
    ticked(&mut feed, "update_tenant");
    store.set_poll_secret(&id, Some("h")).await.expect("poll");
    ticked(&mut feed, "set_poll_secret");

    let bucket = bucket_in(&id, "b");
    store.create_bucket(&bucket).await.expect("bucket");
    ticked(&mut feed, "create_bucket");
    store.update_bucket(&bucket).await.expect("update bucket");
    ticked(&mut feed, "update_bucket");
    let input = input_in(&bucket, Some("in"));
    store.create_input(&input).await.expect("input");
    ticked(&mut feed, "create_input");
    store.update_input(&input).await.expect("update input");
    ticked(&mut feed, "update_input");
    let output = output_in(&bucket);
    store.create_output(&output).await.expect("output");
    ticked(&mut feed, "create_output");
    store.update_output(&output).await.expect("update output");
    ticked(&mut feed, "update_output");
    let token = token_in(&id, TokenScope::Tenant);
    store.create_token(&token).await.expect("token");
    ticked(&mut feed, "create_token");
    store.update_token(&token).await.expect("update token");
    ticked(&mut feed, "update_token");
    store
        .rotate_token_secret(&id, &token.key, "$2b$10$other")
        .await
        .expect("rotate");
    ticked(&mut feed, "rotate_token_secret");
    let mut tunnel = tunnel_in(&id, &fresh_name("feed"));
    store.create_tunnel(&tunnel).await.expect("tunnel");
    ticked(&mut feed, "create_tunnel");
    tunnel.enabled = false;
    store.update_tunnel(&tunnel).await.expect("update tunnel");
    ticked(&mut feed, "update_tunnel");

    store.input_by_id(&input.id).await.expect("read input");
    store.list_buckets(&id).await.expect("list buckets");
    store.token_by_key(&token.key).await.expect("read token");
    store
        .tunnel_by_name(&tunnel.name)
        .await
        .expect("read tunnel");
    still(&feed, "a read");
    let missing = bucket_in(&unique("feed-none"), "b");
    assert!(matches!(
        store.create_bucket(&missing).await,
        Err(Error::NotFound)
    ));
    still(&feed, "a refused write");
    let w = World::create(store, "feed-events").await;
    feed.borrow_and_update();
    store.append(w.event()).await.expect("append");
    still(&feed, "an append");

    store
        .delete_token(&id, &token.key)
        .await
        .expect("delete token");
    ticked(&mut feed, "delete_token");
    store
        .delete_tunnel(&id, &tunnel.id)
        .await
        .expect("delete tunnel");
    ticked(&mut feed, "delete_tunnel");
    store
        .delete_output(&id, &output.id)
        .await
        .expect("delete output");
    ticked(&mut feed, "delete_output");
    store
        .delete_input(&id, &input.id)
        .await
        .expect("delete input");
    ticked(&mut feed, "delete_input");
    store
        .delete_bucket(&id, &bucket.id)
        .await
        .expect("delete bucket");
    ticked(&mut feed, "delete_bucket");
    store.delete_tenant(&id).await.expect("delete tenant");
    ticked(&mut feed, "delete_tenant");
}
