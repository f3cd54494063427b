//! [`EventLog`] on SQLite: the append that runs inside a writer job, cursor
//! reads, resend; retention is in `retention`.
//!
//! An event's id is `evt_` + a ULID whose time part equals its
//! `received_at`, so id order is time order and "received at or after `ms`"
//! is the id range `>= EventId::floor_at(ms)`: the `(tenant, id)` and
//! `(tenant, bucket, id)` indexes serve cursors, `since` and retention.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use crypto::Keyring;
use model::{Delivery, Event, EventBody, EventId, InputId, NewEvent, OutputId, TenantId};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::watch;

use super::rows::{self, db_err, to_json};
use super::writer::{JobKind, WriteCx};
use super::{retention, SqliteStore};
use crate::{sealed, Appended, Cursor, Error, EventLog, EventQuery, Result};

/// The longest dedup window honoured: what the open-time rebuild scans back.
pub(super) const MAX_DEDUP_WINDOW_MS: i64 = 3_600_000;

/// The largest time a ULID can carry (48 bits of ms, year 10889).
const MAX_ULID_MS: i64 = (1 << 48) - 1;

pub(super) fn floor_text(ms: i64) -> String {
    EventId::floor_at(ms.min(MAX_ULID_MS)).to_string()
}

/// Stores one event and its pending deliveries, and records its delivery id
/// among the batch's pending ids (published by the writer after COMMIT).
/// Runs without a savepoint: it refuses before its first write, and marks
/// `cx.wrote` so that a later failure rolls the whole batch back.
/// `plaintext` is the event's query, headers and body already laid out by
/// the caller (`sealed::event_plaintext`), off the writer thread, which is
/// the one serial part of ingest; `None` for a body-less (ephemeral) event.
/// It is sealed here because its associated data, the id, is minted here.
pub(super) fn append(
    cx: &mut WriteCx<'_>,
    e: &NewEvent,
    plaintext: Option<&[u8]>,
    keys: &Keyring,
) -> Result<Appended> {
    let conn = cx.conn;
    let ephemeral: bool = conn
        .prepare_cached("SELECT ephemeral FROM buckets WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row([e.tenant.as_str(), e.bucket.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(db_err)?
        .ok_or(Error::NotFound)?;
    let (id, received_at) = cx.ids.next(cx.clock);
    let id_text = id.to_string();
    let input = e.input.to_string();
    let dedup_expires_at = e
        .delivery_id
        .as_ref()
        .map(|_| received_at.saturating_add(e.dedup_window_ms.clamp(0, MAX_DEDUP_WINDOW_MS)));
    // Against the committed ids and those of this batch so far.
    let fresh = match &e.delivery_id {
        Some(delivery_id) => Some(
            cx.dedup
                .check(cx.pending, &e.tenant, &e.input, delivery_id, received_at)
                .ok_or(Error::Duplicate)?,
        ),
        None => None,
    };
    // The bucket is checked here too, not only by ingest: an ephemeral
    // bucket's payload must never reach the disk, whatever the caller sent.
    let kept = match plaintext {
        Some(plain) if !ephemeral => Some(sealed::seal_event(keys, &id_text, plain)?),
        _ => None,
    };
    // Everything above refuses without writing; from here on a failure
    // takes the whole batch down (no savepoint, see the writer).
    let marks = if e.marks.is_empty() {
        None
    } else {
        Some(to_json(&e.marks)?)
    };
    cx.wrote = true;
    conn.prepare_cached(
        "INSERT INTO events (id, tenant, bucket, input, integration, received_at, method, path,
                             key_id, payload, body_size, client_ip, delivery_id,
                             event_type, event_count, verified, dedup_expires_at, marks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id_text,
            e.tenant.as_str(),
            e.bucket.as_str(),
            input,
            e.integration.map(|k| k.name()),
            received_at,
            e.method,
            e.path,
            kept.as_ref().map(|k| k.1 .0),
            kept.as_ref().map(|k| k.0.as_slice()),
            rows::int(e.body.size()),
            e.client_ip,
            e.delivery_id,
            e.event_type,
            e.event_count,
            e.verified,
            dedup_expires_at,
            marks,
        ])
    })
    .map_err(db_err)?;
    if e.marks.delivers() {
        insert_deliveries(conn, e, &id_text, received_at)?;
    }
    // Last, once the rows are written. Still invisible to `delivery_seen`
    // until the batch commits.
    if let (Some(fresh), Some(expires)) = (fresh, dedup_expires_at) {
        cx.pending.record(&e.tenant, fresh, expires);
    }
    Ok(Appended { id, received_at })
}

/// One pending delivery per output of the event's bucket (and per agent
/// group of an internal output).
fn insert_deliveries(
    conn: &Connection,
    e: &NewEvent,
    id_text: &str,
    received_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO deliveries (tenant, bucket, event_id, output_id, grp, internal, state,
                                 tries, pending_since, next_attempt_at, attempts, updated_at)
         SELECT ?1, ?4, ?2, o.id, g.grp, o.internal, 'pending', 0, ?3, 0, '[]', ?3
         FROM outputs o
         LEFT JOIN agent_groups g
             ON o.internal = 1 AND g.tenant = o.tenant AND g.bucket = o.bucket
         WHERE o.tenant = ?1 AND o.bucket = ?4 ORDER BY o.created_at, o.id, g.grp",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.tenant.as_str(),
            id_text,
            received_at,
            e.bucket.as_str()
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// Delivery ids still live at `now_ms`, read from the events that carry
/// them, to rebuild the in-memory dedup set at open. Oldest first: the
/// order `DedupSet` needs to purge by walking each tenant's queue from the
/// front (see `crate::dedup`).
pub(super) fn live_delivery_ids(
    conn: &Connection,
    now_ms: i64,
) -> Result<Vec<(TenantId, InputId, String, i64)>> {
    let mut stmt = conn
        .prepare(
            "SELECT tenant, input, delivery_id, dedup_expires_at, received_at FROM events
             ORDER BY seq DESC",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(db_err)?;
    let mut live = Vec::new();
    // Newest first; everything older than the longest window is done with.
    for row in rows {
        let (tenant, input, delivery_id, expires, received_at) = row.map_err(db_err)?;
        if received_at < now_ms - MAX_DEDUP_WINDOW_MS {
            break;
        }
        let (Some(delivery_id), Some(expires)) = (delivery_id, expires) else {
            continue;
        };
        if expires <= now_ms {
            continue;
        }
        let tenant = tenant
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        let input = input
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        live.push((tenant, input, delivery_id, expires));
    }
    live.reverse();
    Ok(live)
}

/// One event and its deliveries, read in one transaction so they agree.
pub(super) fn event(
    conn: &mut Connection,
    tenant: &TenantId,
    id: &EventId,
    keys: &Keyring,
) -> Result<(Event, Vec<Delivery>)> {
    let tx = conn.transaction().map_err(db_err)?;
    let (tenant, id) = (tenant.as_str(), id.to_string());
    let event = {
        let sql = format!(
            "SELECT {} FROM events WHERE tenant = ?1 AND id = ?2",
            rows::EVENT_COLS
        );
        let mut stmt = tx.prepare_cached(&sql).map_err(db_err)?;
        let mut found = stmt.query([tenant, &id]).map_err(db_err)?;
        match found.next().map_err(db_err)? {
            Some(row) => rows::event(row, keys)?,
            None => return Err(Error::NotFound),
        }
    };
    let deliveries = {
        let sql = format!(
            "SELECT {} FROM deliveries WHERE tenant = ?1 AND event_id = ?2 ORDER BY rowid",
            rows::DELIVERY_COLS
        );
        let mut stmt = tx.prepare_cached(&sql).map_err(db_err)?;
        let found = stmt.query([tenant, &id]).map_err(db_err)?;
        rows::collect(found, rows::delivery)?
    };
    tx.commit().map_err(db_err)?;
    Ok((event, deliveries))
}

pub(super) fn events(
    conn: &Connection,
    tenant: &TenantId,
    q: &EventQuery,
    keys: &Keyring,
) -> Result<Vec<Event>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let (op, bound, since) = match q.from {
        Cursor::Start => (">=", String::new(), i64::MIN),
        Cursor::After(id) => (">", id.to_string(), i64::MIN),
        // The id bound does the work through the index; the received_at
        // term keeps the answer exact for times a ULID cannot hold.
        Cursor::Since(ms) => (">=", floor_text(ms), ms),
        // '~' sorts after every id ("evt_" and Crockford base32).
        Cursor::Newest => ("<", "~".to_owned(), i64::MIN),
        Cursor::Before(id) => ("<", id.to_string(), i64::MIN),
    };
    let order = if q.from.newest_first() { "DESC" } else { "ASC" };
    let (filter, buckets) = match q.buckets.as_slice() {
        [] => ("", None),
        [one] => ("AND bucket = ?4", Some(one.as_str().to_owned())),
        many => (
            "AND bucket IN (SELECT value FROM json_each(?4))",
            Some(to_json(many)?),
        ),
    };
    // The id-ordered indexes answer ORDER BY id LIMIT n, walked backwards
    // for DESC; the received_at term only trims the edge, so it is kept
    // out of index choice (`+`).
    let sql = format!(
        "SELECT {} FROM events
         WHERE tenant = ?1 AND id {op} ?2 AND +received_at >= ?3 {filter}
         ORDER BY id {order} LIMIT ?5",
        rows::EVENT_COLS
    );
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let found = stmt
        .query(params![tenant.as_str(), bound, since, buckets, limit])
        .map_err(db_err)?;
    rows::collect(found, |r| rows::event(r, keys))
}

pub(super) fn reset_deliveries(
    conn: &Connection,
    tenant: &TenantId,
    event: &EventId,
    output: Option<&OutputId>,
    now_ms: i64,
) -> Result<usize> {
    let (tenant, event) = (tenant.as_str(), event.to_string());
    let exists = conn
        .prepare_cached("SELECT 1 FROM events WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row([tenant, &event], |_| Ok(())).optional())
        .map_err(db_err)?;
    exists.ok_or(Error::NotFound)?;
    conn.prepare_cached(
        // Due again at once, never 0: see `deliveries::DUE_AGAIN_AT_ONCE`.
        "UPDATE deliveries SET state = 'pending', updated_at = ?4, pending_since = ?4,
                               tries = 0, next_attempt_at = 1
         WHERE tenant = ?1 AND event_id = ?2 AND (?3 IS NULL OR output_id = ?3)
           AND state != 'in_flight'",
    )
    .and_then(|mut s| s.execute(params![tenant, event, output.map(OutputId::as_str), now_ms]))
    .map_err(db_err)
}

#[async_trait]
impl EventLog for SqliteStore {
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
        let keys = Arc::clone(&self.keys);
        self.writer
            .call(JobKind::Append, move |cx| {
                append(cx, &event, plaintext.as_deref(), &keys)
            })
            .await
            .map_err(rows::append_error)
    }

    async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        Ok(self.shared.dedup.seen(tenant, input, delivery_id, now_ms))
    }

    async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        let (tenant, id, keys) = (tenant.clone(), *id, Arc::clone(&self.keys));
        self.read(move |c| event(c, &tenant, &id, &keys)).await
    }

    async fn events(&self, tenant: &TenantId, query: &EventQuery) -> Result<Vec<Event>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        let keys = Arc::clone(&self.keys);
        self.read(move |c| events(c, &tenant, &query, &keys)).await
    }

    fn visible_before(&self) -> i64 {
        // Clock FIRST, floor second: the writer publishes its floor before
        // assigning any received_at, so this order guarantees that a batch
        // in flight either shows up as the floor or assigns times at or
        // above `now` (see `writer::Thread::commit`). Reversed, a batch
        // starting between the two loads could assign a time below `now`
        // that a poller using this answer as `since` would skip.
        let now = self.shared.clock.now();
        let floor = self.shared.floor.load(Ordering::SeqCst);
        now.min(floor)
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize> {
        let (tenant, event, output) = (tenant.clone(), *event, output.cloned());
        let now = self.shared.clock.now();
        self.write(move |c| reset_deliveries(c, &tenant, &event, output.as_ref(), now))
            .await
    }

    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize> {
        self.shared.dedup.purge(now_ms);
        self.write(move |c| retention::purge(c, now_ms, batch))
            .await
    }
}
