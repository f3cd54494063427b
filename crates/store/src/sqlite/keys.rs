//! Key maintenance on the SQLite file, for `hookrelay keys`: which keys the
//! stored records use, and re-encryption of old records under the active
//! key in small, separately committed batches.
//!
//! [`KeyMaintenance`] opens its own connection, so it works on a stopped
//! server's data directory and also beside a running server (SQLite's locks
//! order the two writers; each batch holds the write lock for one short
//! transaction). Re-encryption is resumable: a batch commits or not as a
//! whole, and a new run skips every record already under the active key.

use std::collections::BTreeMap;
use std::path::Path;

use crypto::{KeyId, Keyring};
use rusqlite::{params, Connection, OptionalExtension};

use super::rows::db_err;
use super::schema;
use crate::sealed::{self, Table};
use crate::{Error, Result};

pub use crate::maintenance::{KeyUsage, ReencryptStep};

/// Key maintenance of one data directory's store.
pub struct KeyMaintenance {
    conn: Connection,
    keys: Keyring,
    /// Where the scan of events goes on: the last `seq` looked at. Inputs,
    /// buckets, functions and tunnels (a few rows per tenant) are done in
    /// the first batch.
    events_after: Option<i64>,
}

impl KeyMaintenance {
    /// Opens the store in `data_dir`, which must exist: maintenance never
    /// creates an empty store.
    pub fn open(data_dir: &Path, keys: Keyring) -> Result<Self> {
        let path = data_dir.join(super::FILE_NAME);
        if !path.exists() {
            return Err(Error::NotFound);
        }
        let conn = schema::open_writer(&path)?;
        Ok(Self {
            conn,
            keys,
            events_after: None,
        })
    }

    /// Counts the records under each key.
    pub fn usage(&self) -> Result<KeyUsage> {
        let count = |sql: &str| -> Result<BTreeMap<KeyId, u64>> {
            let mut stmt = self.conn.prepare(sql).map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((KeyId(r.get(0)?), r.get::<_, i64>(1)? as u64)))
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_err)
        };
        Ok(KeyUsage {
            events: count(
                "SELECT key_id, count(*) FROM events WHERE key_id IS NOT NULL GROUP BY key_id",
            )?,
            inputs: count("SELECT secrets_key, count(*) FROM inputs GROUP BY secrets_key")?,
            buckets: count("SELECT auth_key, count(*) FROM buckets GROUP BY auth_key")?,
            functions: count("SELECT config_key, count(*) FROM functions GROUP BY config_key")?,
            tunnels: count("SELECT auth_key, count(*) FROM tunnels GROUP BY auth_key")?,
            canary: None,
            server_active: active(&self.conn)?,
        })
    }

    /// Re-encrypts up to `batch` records not under the active key, in one
    /// transaction. Call until `done`.
    pub fn reencrypt_step(&mut self, batch: usize) -> Result<ReencryptStep> {
        let active = self.keys.active().0;
        let tx = self.conn.transaction().map_err(db_err)?;
        let mut step = ReencryptStep::default();
        let batches: Vec<(Table, Vec<SealedRow>)> = match self.events_after {
            // First the settings, a few rows per tenant, in one batch.
            None => vec![
                (
                    Table::Inputs,
                    select(
                        &tx,
                        "SELECT rowid, id, secrets FROM inputs WHERE secrets_key != ?1",
                        params![active],
                    )?,
                ),
                (
                    Table::Buckets,
                    select(
                        &tx,
                        "SELECT rowid, id, auth FROM buckets WHERE auth_key != ?1",
                        params![active],
                    )?,
                ),
                (
                    Table::Functions,
                    select(
                        &tx,
                        "SELECT rowid, id, config FROM functions WHERE config_key != ?1",
                        params![active],
                    )?,
                ),
                (
                    Table::Tunnels,
                    select(
                        &tx,
                        "SELECT rowid, id, auth FROM tunnels WHERE auth_key != ?1",
                        params![active],
                    )?,
                ),
            ],
            Some(after) => {
                let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
                let rows = select(
                    &tx,
                    "SELECT seq, id, payload FROM events
                     WHERE seq > ?2 AND key_id IS NOT NULL AND key_id != ?1
                     ORDER BY seq LIMIT ?3",
                    params![active, after, limit],
                )?;
                step.done = rows.len() < batch.max(1);
                self.events_after = rows.last().map(|r| r.0).or(Some(after));
                vec![(Table::Events, rows)]
            }
        };
        for (table, rows) in batches {
            let update = match table {
                Table::Inputs => {
                    "UPDATE inputs SET secrets = ?2, secrets_key = ?3 WHERE rowid = ?1"
                }
                Table::Buckets => "UPDATE buckets SET auth = ?2, auth_key = ?3 WHERE rowid = ?1",
                Table::Functions => {
                    "UPDATE functions SET config = ?2, config_key = ?3 WHERE rowid = ?1"
                }
                Table::Tunnels => "UPDATE tunnels SET auth = ?2, auth_key = ?3 WHERE rowid = ?1",
                Table::Events => "UPDATE events SET payload = ?2, key_id = ?3 WHERE seq = ?1",
            };
            for (rowid, id, sealed_bytes) in rows {
                let aad = sealed::aad_of(table, &id);
                let resealed = match sealed::reseal(&self.keys, &aad, &sealed_bytes) {
                    Ok(Some(resealed)) => {
                        step.rewritten += 1;
                        resealed
                    }
                    // The key id column disagreed with the record's own
                    // header; the header is what opens it, so fix the column.
                    Ok(None) => sealed_bytes,
                    Err(err) => {
                        tracing::warn!(record = %id, %err, "cannot re-encrypt a record; left as it is");
                        step.unreadable += 1;
                        continue;
                    }
                };
                tx.prepare_cached(update)
                    .and_then(|mut s| s.execute(params![rowid, resealed, active]))
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        if self.events_after.is_none() {
            self.events_after = Some(0);
        }
        Ok(step)
    }
}

type SealedRow = (i64, String, Vec<u8>);

fn select(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<SealedRow>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

/// Records the key a server encrypts with (at every open).
pub(super) fn record_active(conn: &Connection, id: KeyId) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('active_key', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute([id.to_string()]))
    .map_err(db_err)?;
    Ok(())
}

fn active(conn: &Connection) -> Result<Option<KeyId>> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'active_key'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?;
    text.map(|t| {
        t.parse()
            .map_err(|_| Error::Corrupt(format!("meta.active_key {t:?}")))
    })
    .transpose()
}
