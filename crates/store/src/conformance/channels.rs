//! Channels: found by the digest of their capability from any tenant,
//! listed, cursor saves that only move forward, isolation by tenant, and
//! deletes (of the channel, its bucket, its tenant) that leave nothing
//! to find.

use std::sync::Arc;

use model::{Channel, ChannelId, EventId};

use super::{now, World};
use crate::{Error, Store};

fn channel_of(world: &World, digest: &str) -> Channel {
    Channel {
        id: ChannelId::generate(),
        tenant: world.tenant.clone(),
        bucket: world.bucket.id.clone(),
        capability_sha256: digest.to_owned(),
        cursor: None,
        created_at: now(),
    }
}

/// A digest no other check uses.
fn digest(label: &str) -> String {
    format!("{label}-{}", ulid::Ulid::new())
}

pub async fn channels(store: &Arc<dyn Store>) {
    let (a, b) = (
        World::create(store, "chn-a").await,
        World::create(store, "chn-b").await,
    );
    let (d1, d2) = (digest("one"), digest("two"));
    let one = channel_of(&a, &d1);
    store.create_channel(&one).await.unwrap();
    let two = channel_of(&a, &d2);
    store.create_channel(&two).await.unwrap();
    assert_eq!(store.channel_by_capability(&d1).await.unwrap(), one);
    let listed = store.list_channels(&a.tenant, &a.bucket.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(matches!(
        store.channel_by_capability(&digest("none")).await,
        Err(Error::NotFound)
    ));
    // A bucket of another tenant: no channel, no listing, no delete.
    let mut stray = channel_of(&a, &digest("stray"));
    stray.bucket = b.bucket.id.clone();
    assert!(matches!(
        store.create_channel(&stray).await,
        Err(Error::NotFound)
    ));
    assert!(store
        .list_channels(&b.tenant, &a.bucket.id)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.delete_channel(&b.tenant, &a.bucket.id, &one.id).await,
        Err(Error::NotFound)
    ));

    // The cursor moves forward only, and only through its tenant.
    let (early, late) = (EventId::floor_at(1_000), EventId::floor_at(2_000));
    store
        .advance_channel_cursor(&a.tenant, &one.id, late)
        .await
        .unwrap();
    store
        .advance_channel_cursor(&a.tenant, &one.id, early)
        .await
        .unwrap();
    store
        .advance_channel_cursor(&b.tenant, &one.id, EventId::floor_at(3_000))
        .await
        .unwrap();
    let read = store.channel_by_capability(&d1).await.unwrap();
    assert_eq!(read.cursor, Some(late));

    // Deleted: never found again; the bucket's deletion takes the rest.
    store
        .delete_channel(&a.tenant, &a.bucket.id, &one.id)
        .await
        .unwrap();
    assert!(matches!(
        store.channel_by_capability(&d1).await,
        Err(Error::NotFound)
    ));
    store.delete_bucket(&a.tenant, &a.bucket.id).await.unwrap();
    assert!(matches!(
        store.channel_by_capability(&d2).await,
        Err(Error::NotFound)
    ));
    let d3 = digest("three");
    store.create_channel(&channel_of(&b, &d3)).await.unwrap();
    store.delete_tenant(&b.tenant).await.unwrap();
    assert!(matches!(
        store.channel_by_capability(&d3).await,
        Err(Error::NotFound)
    ));
}
