//! [`DeliveryQueue`] on Redis: delivery dispatch shared by several nodes. A delivery is a hash
//! `d:<member>` (state, tries, pending-since, due time, owner node,
//! internal flag, bucket, attempts JSON, updated), listed per event in
//! `ed:<event>` (a sorted set by creation order). Pending rows wait in:
//!
//! - `q:<bucket>:=<group>`: an agent group's ready queue (score 0, so
//!   members, which start with the event id, sort in event order);
//! - `qr:<bucket>:=<group>`: the group's rows in retry backoff, by due time;
//!   the due query moves the due ones into `q` first;
//! - `w:<bucket>`: internal rows waiting for the bucket's first group;
//! - `pq`: the tenant's public-output rows (the server's own), by due time.
//!
//! The due queries *claim* what they return for the calling node: the row
//! moves to `qc:<bucket>:<node>:=<group>` (or `pqc:<node>`) and records the
//! node as owner. Other nodes no longer see it; the owner sees it again
//! until it marks it in flight (`qf:...` / `pqf:<node>`), settles or
//! releases it, or until the claim's lease runs out (`cluster`).
//! `held:<node>` lists the claim sets a node has in the tenant, and the
//! global `nt:<node>` the tenants: what the sweeper (`cluster`) visits to
//! give a dead node's claims back, without scanning the keyspace.
//!
//! The public queue is per tenant so that claiming stays one tenant's
//! script; the global `pubt` lists the tenants that have public outputs,
//! and `due_public_deliveries` runs one claim per such tenant.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use model::{Attempt, BucketId, TenantId};
use redis::Value;

use super::codec::{self, to_json, unavailable};
use super::keys::{floor_bound, group_tag, member, parse_member};
use super::{Inner, RedisStore};
use crate::{DeliveryKey, DeliveryQueue, DueBatch, DueDelivery, Error, Result, Settle, Settlement};

/// How long a tenant noted in `nt:<node>` is not noted again: the note is
/// one round trip, and a dispatch makes two calls that need it (claim and
/// mark). Short, because a sweeper that took this node for dead (a long
/// pause) deletes the registry, and claims made before the next note would
/// then be invisible to the sweeper were the node to die for real.
const NOTE_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// The tenants this node noted lately, and when.
#[derive(Debug, Default)]
pub(super) struct Noted(Mutex<HashMap<TenantId, Instant>>);

impl Inner {
    /// Registers this node as possibly holding claims in `tenant` (before
    /// any claim is made, so the sweeper can find it).
    pub(super) async fn note_claims(&self, tenant: &TenantId) -> Result<()> {
        let now = Instant::now();
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < NOTE_AGAIN_AFTER;
        if self
            .noted
            .0
            .lock()
            .is_ok_and(|n| n.get(tenant).is_some_and(fresh))
        {
            return Ok(());
        }
        let mut con = self.con()?;
        redis::cmd("SADD")
            .arg(self.keys.node_tenants(&self.node))
            .arg(tenant.as_str())
            .query_async::<()>(&mut con)
            .await
            .map_err(unavailable)?;
        if let Ok(mut noted) = self.noted.0.lock() {
            // Bounded by the tenants this node dispatches for; the stale
            // ones go whenever a note finds the map large.
            if noted.len() >= 4096 {
                noted.retain(|_, at| fresh(at));
            }
            noted.insert(tenant.clone(), now);
        }
        Ok(())
    }

    /// Claims the due public rows of one tenant (of one bucket unless
    /// `bucket` is empty): the next due time, and each row with its due time.
    pub(super) async fn due_public_of(
        &self,
        tenant: &TenantId,
        bucket: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<(Option<i64>, Vec<(i64, DeliveryKey)>)> {
        self.note_claims(tenant).await?;
        let mut con = self.con()?;
        let reply: Value = self
            .scripts
            .due_public
            .key(self.keys.tenant(tenant))
            .arg(&self.node)
            .arg(now_ms)
            .arg(limit)
            .arg(bucket)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        let mut items = codec::array(reply)?.into_iter();
        let next_at = codec::opt_ms(items.next().unwrap_or(Value::Nil))?;
        let mut found = Vec::new();
        let mut rows = codec::array(items.next().unwrap_or(Value::Nil))?.into_iter();
        while let (Some(m), Some(score)) = (rows.next(), rows.next()) {
            let key = parse_member(tenant, &codec::text(m)?)?;
            found.push((codec::opt_ms(score)?.unwrap_or(0), key));
        }
        Ok((next_at, found))
    }

    /// Reads each claimed row's event, output and tries, in one pipeline:
    /// each event and output once however many rows name it, and each
    /// event decrypted once (a batch of a fan-out names every event once
    /// per output). A row whose event or output went meanwhile is skipped.
    pub(super) async fn load(&self, keys: Vec<DeliveryKey>) -> Result<Vec<DueDelivery>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (mut events, mut outputs) = (Vec::new(), Vec::new());
        let (mut seen_events, mut seen_outputs) = (HashSet::new(), HashSet::new());
        for k in &keys {
            if seen_events.insert((&k.tenant, k.event)) {
                events.push((&k.tenant, k.event));
            }
            if seen_outputs.insert((&k.tenant, &k.output)) {
                outputs.push((&k.tenant, &k.output));
            }
        }
        let mut pipe = redis::pipe();
        for (tenant, event) in &events {
            pipe.hgetall(format!("{}e:{event}", self.keys.tenant(tenant)));
        }
        for (tenant, output) in &outputs {
            pipe.hgetall(format!("{}o:{}", self.keys.tenant(tenant), output.as_str()));
        }
        for k in &keys {
            let m = member(&k.event, &k.output, k.group.as_deref());
            pipe.hget(format!("{}d:{m}", self.keys.tenant(&k.tenant)), "tries");
        }
        let mut con = self.con()?;
        let rows: Vec<Value> = pipe.query_async(&mut con).await.map_err(unavailable)?;
        if rows.len() != events.len() + outputs.len() + keys.len() {
            return Err(Error::Corrupt("short pipeline reply".into()));
        }
        let mut rows = rows.into_iter();
        let mut opened = HashMap::with_capacity(events.len());
        for ((tenant, id), e) in events.iter().zip(rows.by_ref()) {
            let e = codec::fields(e)?;
            if !e.is_empty() {
                let event = codec::event(tenant, &id.to_string(), &e, &self.crypto)?;
                opened.insert((*tenant, *id), event);
            }
        }
        let mut found = HashMap::with_capacity(outputs.len());
        for ((tenant, id), o) in outputs.iter().zip(rows.by_ref()) {
            let o = codec::fields(o)?;
            if !o.is_empty() {
                found.insert((*tenant, *id), super::objects::decode_output(&o)?);
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for (key, tries) in keys.iter().zip(rows) {
            let (Some(event), Some(output)) = (
                opened.get(&(&key.tenant, key.event)),
                found.get(&(&key.tenant, &key.output)),
            ) else {
                continue;
            };
            let tries = codec::text(tries)?.parse().unwrap_or(0);
            out.push(DueDelivery {
                key: key.clone(),
                event: event.clone(),
                output: output.clone(),
                tries,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl DeliveryQueue for RedisStore {
    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
        live_until_ms: i64,
    ) -> Result<()> {
        let mut con = self.inner.con()?;
        let _: i64 = self
            .inner
            .scripts
            .register
            .key(self.inner.keys.tenant(tenant))
            .arg(bucket.as_str())
            .arg(group_tag(Some(group)))
            .arg(floor_bound(catchup_from_ms))
            .arg(self.inner.clock.redis_now())
            .arg(live_until_ms)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn abandon_groups(&self, now_ms: i64) -> Result<usize> {
        let mut abandoned = 0;
        for tenant in self.inner.members(self.inner.keys.tenants()).await? {
            let Ok(tenant) = tenant.parse::<TenantId>() else {
                continue;
            };
            let mut con = self.inner.con()?;
            let n: usize = self
                .inner
                .scripts
                .abandon
                .key(self.inner.keys.tenant(&tenant))
                .arg(now_ms)
                .invoke_async(&mut con)
                .await
                .map_err(unavailable)?;
            abandoned += n;
        }
        Ok(abandoned)
    }

    async fn expire_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        before_ms: i64,
    ) -> Result<usize> {
        let mut con = self.inner.con()?;
        let upper = format!("({}", &floor_bound(before_ms)[1..]);
        self.inner
            .scripts
            .expire
            .key(self.inner.keys.tenant(tenant))
            .arg(bucket.as_str())
            .arg(group_tag(Some(group)))
            .arg(&self.inner.node)
            .arg(upper)
            .arg(before_ms)
            .arg(self.inner.clock.redis_now())
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)
    }

    async fn due_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: Option<&str>,
        now_ms: i64,
        limit: usize,
    ) -> Result<DueBatch> {
        // Group `None`: the bucket's public rows (the server's own, which
        // it reads across tenants with `due_public_deliveries`).
        let Some(group) = group else {
            let (next_at, mut found) = self
                .inner
                .due_public_of(tenant, bucket.as_str(), now_ms, limit)
                .await?;
            found.sort_by_key(|(_, k)| k.event);
            let due = self
                .inner
                .load(found.into_iter().map(|(_, k)| k).collect())
                .await?;
            return Ok(DueBatch { due, next_at });
        };
        self.inner.note_claims(tenant).await?;
        let mut con = self.inner.con()?;
        let reply: Value = self
            .inner
            .scripts
            .due
            .key(self.inner.keys.tenant(tenant))
            .arg(bucket.as_str())
            .arg(group_tag(Some(group)))
            .arg(&self.inner.node)
            .arg(now_ms)
            .arg(limit)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        let mut items = codec::array(reply)?.into_iter();
        let next_at = codec::opt_ms(items.next().unwrap_or(Value::Nil))?;
        let mut keys = Vec::new();
        for m in codec::array(items.next().unwrap_or(Value::Nil))? {
            keys.push(parse_member(tenant, &codec::text(m)?)?);
        }
        let due = self.inner.load(keys).await?;
        Ok(DueBatch { due, next_at })
    }

    async fn due_public_deliveries(&self, now_ms: i64, limit: usize) -> Result<DueBatch> {
        let tenants = self.inner.members(self.inner.keys.public_tenants()).await?;
        let mut found: Vec<(i64, DeliveryKey)> = Vec::new();
        let mut next_at: Option<i64> = None;
        for tenant in tenants {
            let Ok(tenant) = tenant.parse::<TenantId>() else {
                continue;
            };
            let (at, rows) = self.inner.due_public_of(&tenant, "", now_ms, limit).await?;
            if let Some(at) = at {
                next_at = Some(next_at.map_or(at, |n| n.min(at)));
            }
            found.extend(rows);
        }
        // What this node claimed beyond `limit` stays its own and comes
        // back on its next call.
        found.sort_by_key(|a| (a.0, a.1.event));
        found.truncate(limit);
        let due = self
            .inner
            .load(found.into_iter().map(|(_, k)| k).collect())
            .await?;
        Ok(DueBatch { due, next_at })
    }

    async fn mark_in_flight(&self, keys: &[DeliveryKey]) -> Result<()> {
        let mut by_tenant: BTreeMap<&TenantId, Vec<String>> = BTreeMap::new();
        for k in keys {
            by_tenant.entry(&k.tenant).or_default().push(member(
                &k.event,
                &k.output,
                k.group.as_deref(),
            ));
        }
        for (tenant, members) in by_tenant {
            self.inner.note_claims(tenant).await?;
            let mut con = self.inner.con()?;
            let mut call = self.inner.scripts.mark.key(self.inner.keys.tenant(tenant));
            call.arg(&self.inner.node).arg(self.inner.clock.redis_now());
            for m in members {
                call.arg(m);
            }
            let _: i64 = call.invoke_async(&mut con).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn settle_batch(&self, batch: &[Settlement]) -> Result<()> {
        let mut by_tenant: BTreeMap<&TenantId, Vec<&Settlement>> = BTreeMap::new();
        for s in batch {
            by_tenant.entry(&s.key.tenant).or_default().push(s);
        }
        for (tenant, batch) in by_tenant {
            let mut call = self
                .inner
                .scripts
                .settle_batch
                .key(self.inner.keys.tenant(tenant));
            call.arg(self.inner.clock.redis_now()).arg(&self.inner.node);
            for s in batch {
                let (kind, at) = settle_kind(s.next);
                let attempt = s.attempt.as_ref().map(to_json).transpose()?;
                call.arg(member(&s.key.event, &s.key.output, s.key.group.as_deref()))
                    .arg(kind)
                    .arg(at)
                    .arg(attempt.unwrap_or_default());
            }
            let mut con = self.inner.con()?;
            let _: i64 = call.invoke_async(&mut con).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn settle(
        &self,
        key: &DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
    ) -> Result<()> {
        let (kind, at) = settle_kind(next);
        let attempt = attempt.as_ref().map(to_json).transpose()?;
        let mut con = self.inner.con()?;
        let answer: String = self
            .inner
            .scripts
            .settle
            .key(self.inner.keys.tenant(&key.tenant))
            .arg(member(&key.event, &key.output, key.group.as_deref()))
            .arg(kind)
            .arg(at)
            .arg(attempt.unwrap_or_default())
            .arg(self.inner.clock.redis_now())
            .arg(&self.inner.node)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        match answer.as_str() {
            "ok" => Ok(()),
            "nf" => Err(Error::NotFound),
            other => Err(Error::Corrupt(format!("settle answered {other:?}"))),
        }
    }
}

/// A settlement as the settle scripts spell it: kind and due time.
fn settle_kind(next: Settle) -> (&'static str, i64) {
    match next {
        Settle::Delivered => ("delivered", 0),
        Settle::Failed => ("failed", 0),
        Settle::RetryAt(at) => ("retry", at),
        Settle::Released => ("released", 0),
        Settle::Expired => ("expired", 0),
        Settle::Skipped => ("skipped", 0),
    }
}
