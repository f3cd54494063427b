//! Channels in Redis: the record is the hash `chn:<id>` under the tenant's
//! prefix (`json`, `cursor`), the bucket's ids in the set `chans:<bucket>`,
//! and the server-wide capability index in the global hash `{ns}:chcap`
//! (digest → `<tenant> <id>`).
//!
//! The index is written first and the record second (they sit in
//! different slots of a Redis Cluster); a lookup trusts an index entry only
//! when the record it names exists, carries the same digest and its bucket
//! still exists, so an entry left behind by a crash, a deleted bucket or a
//! deleted tenant names nothing.

use async_trait::async_trait;
use model::{BucketId, Channel, ChannelId, EventId, TenantId};
use redis::AsyncCommands;

use super::codec::{field, from_json, to_json, unavailable};
use super::{Inner, RedisStore};
use crate::{Channels, Error, Result};

/// Raises `cursor` of `KEYS[1]` to `ARGV[1]` if the record exists and the
/// stored cursor is older (ids are fixed-width text: text order is id
/// order).
const ADVANCE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[1], 'cursor')
if old and old >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[1])
return 1
";

impl Inner {
    fn channel_key(&self, tenant: &TenantId, id: &str) -> String {
        format!("{}chn:{id}", self.keys.tenant(tenant))
    }

    fn bucket_channels_key(&self, tenant: &TenantId, bucket: &str) -> String {
        format!("{}chans:{bucket}", self.keys.tenant(tenant))
    }

    async fn read_channel(&self, tenant: &TenantId, id: &str) -> Result<Channel> {
        let f = self
            .hash(self.channel_key(tenant, id))
            .await?
            .ok_or(Error::NotFound)?;
        let mut c: Channel = from_json(field(&f, "json", "channel")?, "channel")?;
        c.cursor = match f.get("cursor") {
            Some(v) => Some(
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::Corrupt(format!("cursor of channel {id}")))?,
            ),
            None => None,
        };
        Ok(c)
    }

    /// Deletes every channel of a bucket and their index entries (the
    /// bucket, or its tenant, is being deleted).
    pub(super) async fn purge_channels(&self, tenant: &TenantId, bucket: &str) -> Result<()> {
        let set = self.bucket_channels_key(tenant, bucket);
        for id in self.members(set.clone()).await? {
            if let Ok(c) = self.read_channel(tenant, &id).await {
                let mut con = self.con()?;
                let _: () = con
                    .hdel(self.keys.channel_capabilities(), &c.capability_sha256)
                    .await
                    .map_err(unavailable)?;
            }
            let mut con = self.con()?;
            let _: () = con
                .del(self.channel_key(tenant, &id))
                .await
                .map_err(unavailable)?;
        }
        let mut con = self.con()?;
        con.del(set).await.map_err(unavailable)
    }
}

#[async_trait]
impl Channels for RedisStore {
    async fn create_channel(&self, channel: &Channel) -> Result<()> {
        let inner = &self.inner;
        let prefix = inner.keys.tenant(&channel.tenant);
        let mut con = inner.con()?;
        let bucket_exists: bool = con
            .exists(format!("{prefix}b:{}", channel.bucket.as_str()))
            .await
            .map_err(unavailable)?;
        if !bucket_exists {
            return Err(Error::NotFound);
        }
        let holder = format!("{} {}", channel.tenant.as_str(), channel.id.as_str());
        let fresh: bool = con
            .hset_nx(
                inner.keys.channel_capabilities(),
                &channel.capability_sha256,
                holder,
            )
            .await
            .map_err(unavailable)?;
        if !fresh {
            return Err(Error::Conflict("capability"));
        }
        let mut plain = channel.clone();
        plain.cursor = None;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(
                inner.channel_key(&channel.tenant, channel.id.as_str()),
                "json",
                to_json(&plain)?,
            )
            .sadd(
                inner.bucket_channels_key(&channel.tenant, channel.bucket.as_str()),
                channel.id.as_str(),
            );
        if let Some(cursor) = channel.cursor {
            pipe.hset(
                inner.channel_key(&channel.tenant, channel.id.as_str()),
                "cursor",
                cursor.to_string(),
            );
        }
        pipe.query_async::<()>(&mut con).await.map_err(unavailable)
    }

    async fn list_channels(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Channel>> {
        let ids = self
            .inner
            .members(self.inner.bucket_channels_key(tenant, bucket.as_str()))
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.inner.read_channel(tenant, &id).await {
                Ok(c) => out.push(c),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn channel_by_capability(&self, sha256_hex: &str) -> Result<Channel> {
        let inner = &self.inner;
        let mut con = inner.con()?;
        let held: Option<String> = con
            .hget(inner.keys.channel_capabilities(), sha256_hex)
            .await
            .map_err(unavailable)?;
        let held = held.ok_or(Error::NotFound)?;
        let (tenant, id) = held.split_once(' ').ok_or(Error::NotFound)?;
        let tenant: TenantId = tenant.parse().map_err(|_| Error::NotFound)?;
        let channel = inner.read_channel(&tenant, id).await?;
        let bucket_exists: bool = con
            .exists(format!(
                "{}b:{}",
                inner.keys.tenant(&tenant),
                channel.bucket.as_str()
            ))
            .await
            .map_err(unavailable)?;
        if channel.capability_sha256 != sha256_hex || !bucket_exists {
            return Err(Error::NotFound);
        }
        Ok(channel)
    }

    async fn advance_channel_cursor(
        &self,
        tenant: &TenantId,
        id: &ChannelId,
        cursor: EventId,
    ) -> Result<()> {
        let mut con = self.inner.con()?;
        let _: i64 = redis::Script::new(ADVANCE)
            .key(self.inner.channel_key(tenant, id.as_str()))
            .arg(cursor.to_string())
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_channel(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        id: &ChannelId,
    ) -> Result<()> {
        let inner = &self.inner;
        let current = inner.read_channel(tenant, id.as_str()).await?;
        if &current.bucket != bucket {
            return Err(Error::NotFound);
        }
        let mut con = inner.con()?;
        redis::pipe()
            .atomic()
            .del(inner.channel_key(tenant, id.as_str()))
            .srem(
                inner.bucket_channels_key(tenant, bucket.as_str()),
                id.as_str(),
            )
            .query_async::<()>(&mut con)
            .await
            .map_err(unavailable)?;
        let _: () = con
            .hdel(
                inner.keys.channel_capabilities(),
                &current.capability_sha256,
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
