//! Events at rest: per event a hash `e:<id>` (`m` metadata JSON, `p` the
//! sealed payload unless ephemeral, `b` bucket, `ms` time), and two ordered
//! indexes, `ev` (the tenant's) and `b:<bucket>:ev`, sorted sets with score
//! 0 and the event id as member, so `ZRANGEBYLEX` serves both cursors:
//! `After(id)` is `(evt_...` and `Since(ms)` is `[evt_<floor of ms>` (an
//! id's time part is its `receivedAt`). Streams were the other candidate;
//! they assign their own ids, and the event id must exist before sealing,
//! so mapping one to the other would cost a second index anyway.
//!
//! Also here: reads of one event with its deliveries, resend, retention
//! and the cascading deletes of buckets and tenants.

use model::{BucketId, Delivery, Event, EventId, InputId, OutputId, TenantId};
use redis::AsyncCommands;

use super::codec::{self, unavailable, Fields};
use super::keys::{floor_bound, parse_member, MAX_ULID_MS};
use super::Inner;
use crate::{Cursor, Error, EventQuery, Result};

/// Events deleted per script call when a bucket goes.
const DELETE_BATCH: usize = 500;

impl Inner {
    pub(super) async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let mut con = self.con()?;
        let key = format!("{}dd:{input}:{delivery_id}", self.keys.tenant(tenant));
        let until: Option<i64> = con.get(key).await.map_err(unavailable)?;
        Ok(until.is_some_and(|until| until > now_ms))
    }

    pub(super) async fn event(
        &self,
        tenant: &TenantId,
        id: &EventId,
    ) -> Result<(Event, Vec<Delivery>)> {
        let mut con = self.con()?;
        let id_text = id.to_string();
        let reply: redis::Value = self
            .scripts
            .read_event
            .key(self.keys.tenant(tenant))
            .arg(&id_text)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        let mut items = codec::array(reply)?.into_iter();
        let first = items.next().ok_or(Error::NotFound)?;
        let event = codec::event(tenant, &id_text, &codec::fields(first)?, &self.crypto)?;
        let mut deliveries = Vec::new();
        while let (Some(m), Some(f)) = (items.next(), items.next()) {
            let key = parse_member(tenant, &codec::text(m)?)?;
            deliveries.push(codec::delivery(&key, &codec::fields(f)?)?);
        }
        Ok((event, deliveries))
    }

    pub(super) async fn events(&self, tenant: &TenantId, q: &EventQuery) -> Result<Vec<Event>> {
        let (min, since) = match q.from {
            Cursor::Start => ("-".to_owned(), i64::MIN),
            Cursor::After(id) => (format!("({id}"), i64::MIN),
            Cursor::Since(ms) if ms > MAX_ULID_MS => return Ok(Vec::new()),
            Cursor::Since(ms) => (floor_bound(ms), ms),
        };
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = self.keys.tenant(tenant);
        let indexes: Vec<String> = if q.buckets.is_empty() {
            vec![format!("{prefix}ev")]
        } else {
            q.buckets
                .iter()
                .map(|b| format!("{prefix}b:{}:ev", b.as_str()))
                .collect()
        };
        let limit = isize::try_from(q.limit).unwrap_or(isize::MAX);
        let mut con = self.con()?;
        let mut ids: Vec<String> = Vec::new();
        for index in &indexes {
            let found: Vec<String> = con
                .zrangebylex_limit(index, &min, "+", 0, limit)
                .await
                .map_err(unavailable)?;
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        ids.truncate(q.limit);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(format!("{prefix}e:{id}"));
        }
        let rows: Vec<Fields> = pipe.query_async(&mut con).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, row) in ids.iter().zip(rows) {
            // Purged between the index read and this one.
            if row.is_empty() {
                continue;
            }
            let event = codec::event(tenant, id, &row, &self.crypto)?;
            if event.received_at >= since {
                out.push(event);
            }
        }
        Ok(out)
    }

    pub(super) async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize> {
        let mut con = self.con()?;
        let answer: redis::Value = self
            .scripts
            .reset
            .key(self.keys.tenant(tenant))
            .arg(event.to_string())
            .arg(output.map(OutputId::as_str).unwrap_or_default())
            .arg(self.clock.redis_now())
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        match answer {
            redis::Value::Int(n) => {
                if n > 0 {
                    self.tick_commits().await;
                }
                Ok(usize::try_from(n).unwrap_or(0))
            }
            _ => Err(Error::NotFound),
        }
    }

    /// Runs `lua/purge.lua` once on a bucket; returns how many events went.
    async fn purge_bucket(
        &self,
        tenant: &TenantId,
        bucket: &str,
        upper: &str,
        limit: usize,
    ) -> Result<usize> {
        let mut con = self.con()?;
        self.scripts
            .purge
            .key(self.keys.tenant(tenant))
            .arg(bucket)
            .arg(upper)
            .arg(limit)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)
    }

    pub(super) async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize> {
        let mut tenants = self.members(self.keys.tenants()).await?;
        tenants.sort();
        let mut done = 0;
        for tenant in tenants {
            let Ok(tenant) = tenant.parse::<TenantId>() else {
                continue;
            };
            let prefix = self.keys.tenant(&tenant);
            let mut buckets = self.members(format!("{prefix}buckets")).await?;
            buckets.sort();
            for bucket in buckets {
                if done >= batch {
                    return Ok(done);
                }
                let Some(f) = self.hash(format!("{prefix}b:{bucket}")).await? else {
                    continue;
                };
                // Only the plain JSON: retention needs no sealed field.
                let b: model::Bucket =
                    codec::from_json(codec::field(&f, "json", "bucket")?, "bucket")?;
                let retention = i64::try_from(b.retention_seconds).unwrap_or(i64::MAX);
                let cutoff = now_ms.saturating_sub(retention.saturating_mul(1000));
                if cutoff <= 0 {
                    continue;
                }
                let upper = format!("({}", EventId::floor_at(cutoff.min(MAX_ULID_MS)));
                done += self
                    .purge_bucket(&tenant, &bucket, &upper, batch - done)
                    .await?;
            }
        }
        Ok(done)
    }

    pub(super) async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()> {
        let prefix = self.keys.tenant(tenant);
        let mut con = self.con()?;
        let exists: bool = con
            .exists(format!("{prefix}b:{}", id.as_str()))
            .await
            .map_err(unavailable)?;
        if !exists {
            return Err(Error::NotFound);
        }
        let inputs = self
            .members(format!("{prefix}b:{}:ins", id.as_str()))
            .await?;
        while self
            .purge_bucket(tenant, id.as_str(), "+", DELETE_BATCH)
            .await?
            > 0
        {}
        self.object_op(tenant, &[b"bucket.delete", id.as_str().as_bytes()])
            .await?;
        for input in inputs {
            self.drop_owner_if(self.keys.input_owner(&input), tenant)
                .await?;
        }
        Ok(())
    }

    /// Deletes every key under the tenant's prefix (SCAN by pattern: a rare
    /// admin operation), then its entries in the global indexes.
    pub(super) async fn delete_tenant(&self, tenant: &TenantId) -> Result<()> {
        let prefix = self.keys.tenant(tenant);
        let mut con = self.con()?;
        let exists: bool = con
            .exists(format!("{prefix}t"))
            .await
            .map_err(unavailable)?;
        if !exists {
            return Err(Error::NotFound);
        }
        let mut inputs = Vec::new();
        for bucket in self.members(format!("{prefix}buckets")).await? {
            inputs.extend(self.members(format!("{prefix}b:{bucket}:ins")).await?);
        }
        let tokens = self.members(format!("{prefix}tokens")).await?;
        let _: () = con
            .srem(self.keys.tenants(), tenant.as_str())
            .await
            .map_err(unavailable)?;
        let pattern = self.keys.tenant_pattern(tenant);
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(unavailable)?;
            if !found.is_empty() {
                let _: () = con.unlink(found).await.map_err(unavailable)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for input in inputs {
            self.drop_owner_if(self.keys.input_owner(&input), tenant)
                .await?;
        }
        for key in tokens {
            self.drop_owner_if(self.keys.token_owner(&key), tenant)
                .await?;
            let entry = format!("{}|{key}", tenant.as_str());
            let _: () = con
                .srem(self.keys.admins(), entry)
                .await
                .map_err(unavailable)?;
        }
        let _: () = con
            .srem(self.keys.public_tenants(), tenant.as_str())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
