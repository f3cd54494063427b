//! Events at rest: per event a hash `e:<id>` (`m` metadata JSON, `p` the
//! sealed payload unless ephemeral, `b` bucket, `ms` time), and two ordered
//! indexes, `ev` (the tenant's) and `b:<bucket>:ev`, sorted sets with score
//! 0 and the event id as member, so `ZRANGEBYLEX` serves both cursors:
//! `After(id)` is `(evt_...` and `Since(ms)` is `[evt_<floor of ms>` (an
//! id's time part is its `receivedAt`). Streams were the other candidate;
//! they assign their own ids, and the event id must exist before sealing,
//! so mapping one to the other would cost a second index anyway.
//!
//! [`EventLog`] on Redis: the append (handed to the writer task in
//! `append`), reads of one event with its deliveries, resend and
//! retention (`purge_bucket`, which a bucket's delete uses too).

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use model::{Delivery, Event, EventBody, EventId, InputId, NewEvent, OutputId, TenantId};
use redis::AsyncCommands;
use tokio::sync::{oneshot, watch};

use super::append::Job;
use super::codec::{self, unavailable, Fields};
use super::keys::{floor_bound, parse_member, MAX_ULID_MS};
use super::{Inner, RedisStore};
use crate::{sealed, Appended, Cursor, Error, EventLog, EventQuery, Result};

/// Events deleted per script call when a bucket goes.
pub(super) const DELETE_BATCH: usize = 500;

impl Inner {
    /// Runs `lua/purge.lua` once on a bucket; returns how many events went.
    pub(super) async fn purge_bucket(
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
}

#[async_trait]
impl EventLog for RedisStore {
    /// Queues one append for the writer and waits for its commit.
    async fn append(&self, event: NewEvent) -> Result<Appended> {
        let plaintext = match &event.body {
            EventBody::Stored(body) => Some(sealed::event_plaintext_with(
                &event.query,
                &event.headers,
                event.forwarded.as_ref(),
                body,
            )?),
            EventBody::Omitted { .. } | EventBody::Undecryptable { .. } => None,
        };
        let writer = self.inner.writer()?;
        let (reply, answer) = oneshot::channel();
        self.inner.queued.fetch_add(1, Ordering::SeqCst);
        if writer
            .send(Job {
                event,
                plaintext,
                reply,
            })
            .await
            .is_err()
        {
            self.inner.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Unavailable("store is closed".into()));
        }
        answer
            .await
            .map_err(|_| Error::Unavailable("store is closed".into()))?
    }

    async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let mut con = self.inner.con()?;
        let key = format!("{}dd:{input}:{delivery_id}", self.inner.keys.tenant(tenant));
        let until: Option<i64> = con.get(key).await.map_err(unavailable)?;
        Ok(until.is_some_and(|until| until > now_ms))
    }

    async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        let mut con = self.inner.con()?;
        let id_text = id.to_string();
        let reply: redis::Value = self
            .inner
            .scripts
            .read_event
            .key(self.inner.keys.tenant(tenant))
            .arg(&id_text)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        let mut items = codec::array(reply)?.into_iter();
        let first = items.next().ok_or(Error::NotFound)?;
        let event = codec::event(tenant, &id_text, &codec::fields(first)?, &self.inner.crypto)?;
        let mut deliveries = Vec::new();
        while let (Some(m), Some(f)) = (items.next(), items.next()) {
            let key = parse_member(tenant, &codec::text(m)?)?;
            deliveries.push(codec::delivery(&key, &codec::fields(f)?)?);
        }
        Ok((event, deliveries))
    }

    async fn events(&self, tenant: &TenantId, q: &EventQuery) -> Result<Vec<Event>> {
        // The lexical range of the index from the cursor on: (min, max)
        // read upwards, or (max, min) downwards for a newest-first cursor.
        let (bound, since) = match q.from {
            Cursor::Start => ("-".to_owned(), i64::MIN),
            Cursor::After(id) => (format!("({id}"), i64::MIN),
            Cursor::Since(ms) if ms > MAX_ULID_MS => return Ok(Vec::new()),
            Cursor::Since(ms) => (floor_bound(ms), ms),
            Cursor::Newest => ("+".to_owned(), i64::MIN),
            Cursor::Before(id) => (format!("({id}"), i64::MIN),
        };
        let newest_first = q.from.newest_first();
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = self.inner.keys.tenant(tenant);
        let indexes: Vec<String> = if q.buckets.is_empty() {
            vec![format!("{prefix}ev")]
        } else {
            q.buckets
                .iter()
                .map(|b| format!("{prefix}b:{}:ev", b.as_str()))
                .collect()
        };
        let limit = isize::try_from(q.limit).unwrap_or(isize::MAX);
        let mut con = self.inner.con()?;
        let mut ids: Vec<String> = Vec::new();
        for index in &indexes {
            let found: Vec<String> = if newest_first {
                con.zrevrangebylex_limit(index, &bound, "-", 0, limit).await
            } else {
                con.zrangebylex_limit(index, &bound, "+", 0, limit).await
            }
            .map_err(unavailable)?;
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        if newest_first {
            ids.reverse();
        }
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
            let event = codec::event(tenant, id, &row, &self.inner.crypto)?;
            if event.received_at >= since {
                out.push(event);
            }
        }
        Ok(out)
    }

    fn visible_before(&self) -> i64 {
        self.inner.clock.visible_before()
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize> {
        let mut con = self.inner.con()?;
        let answer: redis::Value = self
            .inner
            .scripts
            .reset
            .key(self.inner.keys.tenant(tenant))
            .arg(event.to_string())
            .arg(output.map(OutputId::as_str).unwrap_or_default())
            .arg(self.inner.clock.redis_now())
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        match answer {
            redis::Value::Int(n) => {
                if n > 0 {
                    self.inner.tick_commits().await;
                }
                Ok(usize::try_from(n).unwrap_or(0))
            }
            _ => Err(Error::NotFound),
        }
    }

    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize> {
        let mut tenants = self.inner.members(self.inner.keys.tenants()).await?;
        tenants.sort();
        let mut done = 0;
        for tenant in tenants {
            let Ok(tenant) = tenant.parse::<TenantId>() else {
                continue;
            };
            let prefix = self.inner.keys.tenant(&tenant);
            let mut buckets = self.inner.members(format!("{prefix}buckets")).await?;
            buckets.sort();
            for bucket in buckets {
                if done >= batch {
                    return Ok(done);
                }
                let Some(f) = self.inner.hash(format!("{prefix}b:{bucket}")).await? else {
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
                    .inner
                    .purge_bucket(&tenant, &bucket, &upper, batch - done)
                    .await?;
            }
        }
        Ok(done)
    }
}
