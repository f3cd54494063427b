//! [`DeliveryQueue`] on SQLite: agent group registration, the due queues,
//! in-flight marks, settling attempts and catch-up expiry.
//!
//! The queues are the partial indexes `deliveries_pending` (per tenant,
//! bucket and group, in event order) and `deliveries_public` (the server's
//! own deliveries, by due time); see `schema`.

use std::sync::Arc;

use async_trait::async_trait;
use crypto::Keyring;
use model::{Attempt, BucketId, EventId, TenantId};
use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{self, db_err, to_json};
use super::SqliteStore;
use crate::{
    DeliveryKey, DeliveryQueue, DueBatch, DueDelivery, Error, LaneBatch, LaneRead, Result, Settle,
    Settlement,
};

pub(super) fn register_group(
    conn: &Connection,
    tenant: &TenantId,
    bucket: &BucketId,
    group: &str,
    (catchup_from_ms, live_until_ms): (i64, i64),
    now_ms: i64,
) -> Result<()> {
    let (tenant, bucket) = (tenant.as_str(), bucket.as_str());
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO agent_groups (tenant, bucket, grp, created_at, live_until)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| s.execute(params![tenant, bucket, group, now_ms, live_until_ms]))
        .map_err(db_err)?;
    if added == 0 {
        conn.prepare_cached(
            "UPDATE agent_groups SET live_until = max(live_until, ?4)
             WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3",
        )
        .and_then(|mut s| s.execute(params![tenant, bucket, group, live_until_ms]))
        .map_err(db_err)?;
        return Ok(());
    }
    let others: i64 = conn
        .prepare_cached("SELECT count(*) FROM agent_groups WHERE tenant = ?1 AND bucket = ?2")
        .and_then(|mut s| s.query_row([tenant, bucket], |r| r.get(0)))
        .map_err(db_err)?;
    if others == 1 {
        // The bucket's first group inherits what waited for any group.
        conn.prepare_cached(
            "UPDATE deliveries SET grp = ?3
             WHERE tenant = ?1 AND bucket = ?2 AND internal = 1 AND grp IS NULL",
        )
        .and_then(|mut s| s.execute(params![tenant, bucket, group]))
        .map_err(db_err)?;
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO deliveries (tenant, bucket, event_id, output_id, grp, internal, state,
                                 tries, pending_since, next_attempt_at, attempts, updated_at)
         SELECT e.tenant, e.bucket, e.id, o.id, ?3, 1, 'pending', 0, e.received_at, 0, '[]', ?5
         FROM events e JOIN outputs o
             ON o.tenant = e.tenant AND o.bucket = e.bucket AND o.internal = 1
         WHERE e.tenant = ?1 AND e.bucket = ?2 AND e.id >= ?4
           -- A group that comes back after it was abandoned keeps the rows
           -- it had (expired ones stay expired: resent by hand only).
           AND NOT EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.tenant = e.tenant AND d.event_id = e.id
                             AND d.output_id = o.id AND d.grp = ?3)
         ORDER BY e.id",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            bucket,
            group,
            EventId::floor_at(catchup_from_ms.max(0)).to_string(),
            now_ms
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// Ends the registration of the groups whose `live_until` passed and
/// expires their pending rows (retries in backoff too: nobody will come
/// for them).
pub(super) fn abandon_groups(conn: &Connection, now_ms: i64) -> Result<usize> {
    let gone: Vec<(String, String, String)> = {
        let mut stmt = conn
            .prepare_cached("SELECT tenant, bucket, grp FROM agent_groups WHERE live_until < ?1")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
    };
    for (tenant, bucket, group) in &gone {
        conn.prepare_cached(
            "DELETE FROM agent_groups WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3",
        )
        .and_then(|mut s| s.execute(params![tenant, bucket, group]))
        .map_err(db_err)?;
        conn.prepare_cached(
            "UPDATE deliveries SET state = 'expired', updated_at = ?4
             WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3 AND state = 'pending'",
        )
        .and_then(|mut s| s.execute(params![tenant, bucket, group, now_ms]))
        .map_err(db_err)?;
    }
    Ok(gone.len())
}

pub(super) fn expire(
    conn: &Connection,
    tenant: &TenantId,
    bucket: &BucketId,
    group: &str,
    before_ms: i64,
    now_ms: i64,
) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE deliveries SET state = 'expired', updated_at = ?5
         WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3 AND state = 'pending'
           AND pending_since < ?4 AND next_attempt_at <= ?5",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.as_str(),
            bucket.as_str(),
            group,
            before_ms,
            now_ms
        ])
    })
    .map_err(db_err)
}

/// A pending row before its event and output are read.
struct Row {
    tenant: String,
    event: String,
    output: String,
    group: Option<String>,
    tries: u32,
}

const DUE_INTERNAL: &str = "SELECT tenant, event_id, output_id, grp, tries FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp IS ?3 AND state = 'pending'
       AND internal = 1 AND next_attempt_at <= ?4
     ORDER BY event_id LIMIT ?5";
const DUE_PUBLIC_OF_BUCKET: &str = "SELECT tenant, event_id, output_id, grp, tries FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp IS ?3 AND state = 'pending'
       AND internal = 0 AND next_attempt_at <= ?4
     ORDER BY event_id LIMIT ?5";
const NEXT_INTERNAL: &str = "SELECT min(next_attempt_at) FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp IS ?3 AND state = 'pending'
       AND internal = 1 AND next_attempt_at > ?4";
const NEXT_PUBLIC_OF_BUCKET: &str = "SELECT min(next_attempt_at) FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp IS ?3 AND state = 'pending'
       AND internal = 0 AND next_attempt_at > ?4";

pub(super) fn due(
    conn: &mut Connection,
    tenant: &TenantId,
    bucket: &BucketId,
    group: Option<&str>,
    now_ms: i64,
    limit: usize,
    keys: &Keyring,
) -> Result<DueBatch> {
    let tx = conn.transaction().map_err(db_err)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (tenant_s, bucket_s) = (tenant.as_str(), bucket.as_str());
    // `internal` is spelled as a literal, one statement each way: a bound
    // parameter compared with the public queue's partial index made SQLite
    // re-prepare the statement at every new binding (STAT4), which was 45 %
    // of the relay's instructions per delivered event.
    let (select, next) = if group.is_some() {
        (DUE_INTERNAL, NEXT_INTERNAL)
    } else {
        (DUE_PUBLIC_OF_BUCKET, NEXT_PUBLIC_OF_BUCKET)
    };
    let found: Vec<Row> = {
        let mut stmt = tx.prepare_cached(select).map_err(db_err)?;
        let rows = stmt
            .query_map(
                params![tenant_s, bucket_s, group, now_ms, limit],
                pending_row,
            )
            .map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
    };
    let next_at: Option<i64> = tx
        .prepare_cached(next)
        .and_then(|mut s| s.query_row(params![tenant_s, bucket_s, group, now_ms], |r| r.get(0)))
        .map_err(db_err)?;
    let due = load(&tx, found, keys)?;
    Ok(DueBatch { due, next_at })
}

/// The due time of a row pending again at once (released, or reset for a
/// resend): never 0, which marks a row never tried in this round, because
/// a lane reader's cursor has passed it and only its "due again" read,
/// which comes first, finds it.
pub(super) const DUE_AGAIN_AT_ONCE: i64 = 1;

/// A lane's rows due again: released, or a retry whose backoff ended
/// (`next_attempt_at` is then the time it became pending again, never 0).
const LANE_AGAIN: &str = "SELECT tenant, event_id, output_id, grp, tries FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3 AND output_id = ?4 AND state = 'pending'
       AND next_attempt_at > 0 AND next_attempt_at <= ?5
     ORDER BY next_attempt_at, event_id LIMIT ?6";
/// A lane's rows never tried in this round, after the reader's cursor.
const LANE_FRESH: &str = "SELECT tenant, event_id, output_id, grp, tries FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3 AND output_id = ?4 AND state = 'pending'
       AND next_attempt_at = 0 AND event_id > ?5
     ORDER BY event_id LIMIT ?6";
const LANE_NEXT: &str = "SELECT min(next_attempt_at) FROM deliveries
     WHERE tenant = ?1 AND bucket = ?2 AND grp = ?3 AND output_id = ?4 AND state = 'pending'
       AND next_attempt_at > 0 AND next_attempt_at > ?5";

pub(super) fn due_lanes(
    conn: &mut Connection,
    tenant: &TenantId,
    bucket: &BucketId,
    group: &str,
    now_ms: i64,
    lanes: &[LaneRead],
    keys: &Keyring,
) -> Result<Vec<LaneBatch>> {
    let tx = conn.transaction().map_err(db_err)?;
    let (tenant_s, bucket_s) = (tenant.as_str(), bucket.as_str());
    let mut out = Vec::with_capacity(lanes.len());
    for lane in lanes {
        let output = lane.output.as_str();
        let rows_of = |sql: &str, bound: &dyn rusqlite::ToSql, limit: usize| -> Result<Vec<Row>> {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut stmt = tx.prepare_cached(sql).map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![tenant_s, bucket_s, group, output, bound, limit],
                    pending_row,
                )
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_err)
        };
        let again_rows = if lane.again {
            rows_of(LANE_AGAIN, &now_ms, lane.limit)?
        } else {
            Vec::new()
        };
        let again = again_rows.len();
        let after = lane.after.map(|e| e.to_string()).unwrap_or_default();
        let fresh = rows_of(LANE_FRESH, &after, lane.limit - again)?;
        // Without the rows due again, more of them may wait.
        let exhausted = lane.again && again + fresh.len() < lane.limit;
        let cursor = match fresh.last() {
            Some(row) => Some(row.event.parse().map_err(|_| corrupt_id(&row.event))?),
            None => lane.after,
        };
        let next_at: Option<i64> = tx
            .prepare_cached(LANE_NEXT)
            .and_then(|mut s| {
                s.query_row(params![tenant_s, bucket_s, group, output, now_ms], |r| {
                    r.get(0)
                })
            })
            .map_err(db_err)?;
        let mut due = load(&tx, again_rows, keys)?;
        let again = due.len();
        due.extend(load(&tx, fresh, keys)?);
        out.push(LaneBatch {
            due,
            again,
            cursor,
            exhausted,
            next_at,
        });
    }
    Ok(out)
}

fn corrupt_id(id: &str) -> Error {
    Error::Corrupt(format!("a delivery names the event id {id:?}"))
}

pub(super) fn due_public(
    conn: &mut Connection,
    now_ms: i64,
    limit: usize,
    keys: &Keyring,
) -> Result<DueBatch> {
    let tx = conn.transaction().map_err(db_err)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found: Vec<Row> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT tenant, event_id, output_id, grp, tries FROM deliveries
                 WHERE state = 'pending' AND internal = 0 AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, event_id LIMIT ?2",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![now_ms, limit], pending_row)
            .map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
    };
    let next_at: Option<i64> = tx
        .prepare_cached(
            "SELECT min(next_attempt_at) FROM deliveries
             WHERE state = 'pending' AND internal = 0 AND next_attempt_at > ?1",
        )
        .and_then(|mut s| s.query_row([now_ms], |r| r.get(0)))
        .map_err(db_err)?;
    let due = load(&tx, found, keys)?;
    Ok(DueBatch { due, next_at })
}

fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        tenant: r.get(0)?,
        event: r.get(1)?,
        output: r.get(2)?,
        group: r.get(3)?,
        tries: r.get(4)?,
    })
}

/// Reads each row's event and output. A row whose output was deleted is
/// skipped: it stays pending until retention removes its event.
fn load(conn: &Connection, found: Vec<Row>, keys: &Keyring) -> Result<Vec<DueDelivery>> {
    let event_sql = format!(
        "SELECT {} FROM events WHERE tenant = ?1 AND id = ?2",
        rows::EVENT_COLS
    );
    let output_sql = format!(
        "SELECT {} FROM outputs WHERE tenant = ?1 AND id = ?2",
        rows::OUTPUT_COLS
    );
    let mut due = Vec::with_capacity(found.len());
    for row in found {
        let event = conn
            .prepare_cached(&event_sql)
            .and_then(|mut s| {
                s.query_row([&row.tenant, &row.event], |r| Ok(rows::event(r, keys)))
                    .optional()
            })
            .map_err(db_err)?;
        let output = conn
            .prepare_cached(&output_sql)
            .and_then(|mut s| {
                s.query_row([&row.tenant, &row.output], |r| Ok(rows::output(r)))
                    .optional()
            })
            .map_err(db_err)?;
        let (Some(event), Some(output)) = (event, output) else {
            continue;
        };
        let (event, output) = (event?, output?);
        due.push(DueDelivery {
            key: DeliveryKey {
                tenant: event.tenant.clone(),
                event: event.id,
                output: output.id.clone(),
                group: row.group,
            },
            event,
            output,
            tries: row.tries,
        });
    }
    Ok(due)
}

pub(super) fn mark_in_flight(conn: &Connection, keys: &[DeliveryKey], now_ms: i64) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'in_flight', updated_at = ?5
             WHERE tenant = ?1 AND event_id = ?2 AND output_id = ?3 AND grp IS ?4
               AND state = 'pending'",
        )
        .map_err(db_err)?;
    for key in keys {
        stmt.execute(params![
            key.tenant.as_str(),
            key.event.to_string(),
            key.output.as_str(),
            key.group,
            now_ms
        ])
        .map_err(db_err)?;
    }
    Ok(())
}

pub(super) fn settle(
    conn: &Connection,
    key: &DeliveryKey,
    attempt: Option<&Attempt>,
    next: Settle,
    now_ms: i64,
) -> Result<()> {
    let (state, next_attempt_at) = match next {
        Settle::Delivered => ("delivered", 0),
        Settle::Failed => ("failed", 0),
        Settle::RetryAt(at) => ("pending", at),
        Settle::Released => ("pending", DUE_AGAIN_AT_ONCE),
        Settle::Expired => ("expired", 0),
        Settle::Skipped => ("skipped", 0),
    };
    let attempt = attempt.map(to_json).transpose()?;
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET
                 state = ?5,
                 next_attempt_at = ?6,
                 tries = tries + (?7 IS NOT NULL),
                 attempts = CASE WHEN ?7 IS NULL THEN attempts
                                 ELSE json_insert(attempts, '$[#]', json(?7)) END,
                 updated_at = ?8
             WHERE tenant = ?1 AND event_id = ?2 AND output_id = ?3 AND grp IS ?4
               AND (?9 = 0 OR state = 'in_flight')",
        )
        .and_then(|mut s| {
            s.execute(params![
                key.tenant.as_str(),
                key.event.to_string(),
                key.output.as_str(),
                key.group,
                state,
                next_attempt_at,
                attempt,
                now_ms,
                next == Settle::Released
            ])
        })
        .map_err(db_err)?;
    // A release that finds its delivery no longer in flight (settled by
    // another hand, or reset for a resend) changes nothing, by design.
    if changed == 0 && next != Settle::Released {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Several settlements in the one transaction of the caller's write.
pub(super) fn settle_batch(conn: &Connection, batch: &[Settlement], now_ms: i64) -> Result<()> {
    for s in batch {
        match settle(conn, &s.key, s.attempt.as_ref(), s.next, now_ms) {
            Ok(()) | Err(Error::NotFound) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// At open: whoever held in-flight deliveries before is gone.
pub(super) fn release_all_in_flight(conn: &Connection) -> Result<usize> {
    conn.execute(
        "UPDATE deliveries SET state = 'pending' WHERE state = 'in_flight'",
        [],
    )
    .map_err(db_err)
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
        live_until_ms: i64,
    ) -> Result<()> {
        let (tenant, bucket, group) = (tenant.clone(), bucket.clone(), group.to_owned());
        let now = self.shared.clock.now();
        let times = (catchup_from_ms, live_until_ms);
        self.write(move |c| register_group(c, &tenant, &bucket, &group, times, now))
            .await
    }

    async fn abandon_groups(&self, now_ms: i64) -> Result<usize> {
        self.write(move |c| abandon_groups(c, now_ms)).await
    }

    async fn expire_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        before_ms: i64,
    ) -> Result<usize> {
        let (tenant, bucket, group) = (tenant.clone(), bucket.clone(), group.to_owned());
        let now = self.shared.clock.now();
        self.write(move |c| expire(c, &tenant, &bucket, &group, before_ms, now))
            .await
    }

    async fn due_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: Option<&str>,
        now_ms: i64,
        limit: usize,
    ) -> Result<DueBatch> {
        let (tenant, bucket) = (tenant.clone(), bucket.clone());
        let group = group.map(str::to_owned);
        let keys = Arc::clone(&self.keys);
        self.read(move |c| due(c, &tenant, &bucket, group.as_deref(), now_ms, limit, &keys))
            .await
    }

    async fn due_lanes(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        now_ms: i64,
        lanes: &[LaneRead],
    ) -> Result<Vec<LaneBatch>> {
        let (tenant, bucket, group) = (tenant.clone(), bucket.clone(), group.to_owned());
        let lanes = lanes.to_vec();
        let keys = Arc::clone(&self.keys);
        self.read(move |c| due_lanes(c, &tenant, &bucket, &group, now_ms, &lanes, &keys))
            .await
    }

    async fn due_public_deliveries(&self, now_ms: i64, limit: usize) -> Result<DueBatch> {
        let keys = Arc::clone(&self.keys);
        self.read(move |c| due_public(c, now_ms, limit, &keys))
            .await
    }

    async fn mark_in_flight(&self, keys: &[DeliveryKey]) -> Result<()> {
        let keys = keys.to_vec();
        let now = self.shared.clock.now();
        self.write_bookkeeping(move |c| mark_in_flight(c, &keys, now))
            .await
    }

    async fn settle(
        &self,
        key: &DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
    ) -> Result<()> {
        let key = key.clone();
        let now = self.shared.clock.now();
        self.write_bookkeeping(move |c| settle(c, &key, attempt.as_ref(), next, now))
            .await
    }

    async fn settle_batch(&self, batch: &[Settlement]) -> Result<()> {
        let batch = batch.to_vec();
        let now = self.shared.clock.now();
        self.write_bookkeeping(move |c| settle_batch(c, &batch, now))
            .await
    }
}
