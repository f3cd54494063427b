//! Retention on SQLite: deleting events past their bucket's retention, giving
//! the freed pages back, and the high-water mark that keeps ids increasing
//! across deletes.

use model::EventId;
use rusqlite::{params, Connection, OptionalExtension};

use super::events::floor_text;
use super::rows::db_err;
use crate::{Error, Result};

/// Deletes up to `batch` events past their bucket's retention, with their
/// deliveries.
pub(super) fn purge(conn: &Connection, now_ms: i64, batch: usize) -> Result<usize> {
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let buckets: Vec<(String, String, i64)> = {
        let mut stmt = conn
            .prepare_cached("SELECT tenant, id, retention_seconds FROM buckets")
            .map_err(db_err)?;
        let found = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?;
        found.collect::<rusqlite::Result<_>>().map_err(db_err)?
    };
    let mut victims: Vec<(i64, String, String)> = Vec::new();
    for (tenant, bucket, retention) in buckets {
        let room = limit - victims.len() as i64;
        if room <= 0 {
            break;
        }
        let cutoff = now_ms.saturating_sub(retention.saturating_mul(1000));
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, id FROM events
                 WHERE tenant = ?1 AND bucket = ?2 AND id < ?3 AND +received_at < ?4
                 ORDER BY id LIMIT ?5",
            )
            .map_err(db_err)?;
        let found = stmt
            .query_map(
                params![tenant, bucket, floor_text(cutoff), cutoff, room],
                |r| Ok((r.get(0)?, tenant.clone(), r.get(1)?)),
            )
            .map_err(db_err)?;
        for victim in found {
            victims.push(victim.map_err(db_err)?);
        }
    }
    if !victims.is_empty() {
        keep_high_water(conn)?;
    }
    for (rowid, tenant, id) in &victims {
        conn.prepare_cached("DELETE FROM deliveries WHERE tenant = ?1 AND event_id = ?2")
            .and_then(|mut s| s.execute([tenant, id]))
            .map_err(db_err)?;
        conn.prepare_cached("DELETE FROM events WHERE rowid = ?1")
            .and_then(|mut s| s.execute([rowid]))
            .map_err(db_err)?;
    }
    if !victims.is_empty() {
        reclaim(conn)?;
    }
    Ok(victims.len())
}

/// Free pages kept for reuse, as a share of the file: below it, freed pages
/// simply take the next events (no extra writes); above it, the surplus is
/// handed back to the file system so a burst or a shortened retention
/// shrinks the file.
const FREE_SHARE_KEPT: i64 = 4;
/// Pages returned per purge batch at most (16 MiB of 4 KiB pages), so one
/// batch never holds the writer long.
const RECLAIM_PAGES_MAX: i64 = 4096;

/// Returns surplus free pages to the file system (`auto_vacuum` is
/// INCREMENTAL, see `schema`). A no-op on files created without it.
fn reclaim(conn: &Connection) -> Result<()> {
    let pragma = |name: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(db_err)
    };
    let (free, pages) = (pragma("freelist_count")?, pragma("page_count")?);
    let surplus = free - pages / FREE_SHARE_KEPT;
    if surplus > 0 {
        let n = (free - pages / (2 * FREE_SHARE_KEPT)).min(RECLAIM_PAGES_MAX);
        // Step the pragma to its end: stopped after its first step, it
        // frees a single page.
        let mut stmt = conn
            .prepare(&format!("PRAGMA incremental_vacuum({n})"))
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        while rows.next().map_err(db_err)?.is_some() {}
    }
    Ok(())
}

/// Raises `meta.high_water` to the newest stored event id. Every job that
/// deletes events calls this first, so the newest id ever handed out
/// survives its event (see [`newest`]).
pub(super) fn keep_high_water(conn: &Connection) -> Result<()> {
    // Ids have a fixed width, so text order is id order. `WHERE true`
    // keeps SQLite from reading ON CONFLICT as a join constraint.
    conn.prepare_cached(
        "INSERT INTO meta (key, value)
         SELECT 'high_water', id FROM events WHERE true ORDER BY seq DESC LIMIT 1
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )
    .and_then(|mut s| s.execute([]))
    .map_err(db_err)?;
    Ok(())
}

/// The newest event id ever handed out, as far as the file knows: the
/// newest stored event's, or the high-water mark left by deletes if that is
/// newer. Seeds the id mint and the clock at open.
pub(super) fn newest(conn: &Connection) -> Result<Option<EventId>> {
    let stored: Option<String> = conn
        .query_row("SELECT id FROM events ORDER BY seq DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?;
    let high_water: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'high_water'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?;
    let parse = |text: String| {
        text.parse::<EventId>()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))
    };
    let stored = stored.map(parse).transpose()?;
    let high_water = high_water.map(parse).transpose()?;
    Ok(stored.max(high_water))
}
