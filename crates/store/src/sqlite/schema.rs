//! The SQLite schema, its migrations (tracked in `PRAGMA user_version`) and
//! the pragmas every connection runs with.
//!
//! Nested configuration (response policy, rate limit, output
//! headers and retry, token buckets) lives in JSON text columns: it is only
//! ever read whole, and JSON keeps it schema-free across versions. Secrets
//! that the model skips when serialising (input secrets, token hashes) get
//! their own columns so serde can never drop them.

use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::rows::db_err;
use crate::{Error, Result};

/// Migration `i` moves a database from `user_version = i` to `i + 1`.
/// Append only; never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4,
    V_FUNCTIONS,
    V_DELIVER,
    V_CHANNELS,
    V_GROUP_LIVENESS,
];

/// How long an agent group counts as live without an agent (DESIGN §13,
/// abandoned groups): `abandon_groups` ends the registration of a group
/// whose `live_until` passed. Groups registered before this version count
/// as live for a day after the upgrade, so that no group is abandoned
/// before its agents had a chance to reconnect and renew it.
const V_GROUP_LIVENESS: &str = "
ALTER TABLE agent_groups ADD COLUMN live_until INTEGER NOT NULL DEFAULT 0;
UPDATE agent_groups SET live_until = CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 86400000
";

/// Outputs' `concurrency` and `ordered` (DESIGN §5, §13).
const V2: &str = "
ALTER TABLE outputs ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 16;
ALTER TABLE outputs ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0
";

/// One agent group's queue per output, as the pump reads it (issue 13):
/// rows never tried in this round in event order from the pump's cursor
/// (`fresh`), and rows due again (a retry's backoff, a release) by due
/// time (`again`). Both carry what the due read selects, so a read costs
/// its batch and never the backlog before or behind it.
const V_DELIVER: &str = "
CREATE INDEX deliveries_lane_fresh
    ON deliveries (tenant, bucket, grp, output_id, event_id, tries)
    WHERE state = 'pending' AND next_attempt_at = 0;
CREATE INDEX deliveries_lane_again
    ON deliveries (tenant, bucket, grp, output_id, next_attempt_at, event_id, tries)
    WHERE state = 'pending' AND next_attempt_at > 0
";

/// How long a connection waits on a lock before failing `Unavailable`. Only
/// checkpoints and the rare reader-vs-recovery race ever wait.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements cached per connection: the writer's append path alone uses
/// about ten, and each shape of event query is its own statement.
const STATEMENT_CACHE: usize = 64;

/// WAL pages between automatic checkpoints (see `open_writer`).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The WAL file is cut back to this size after a checkpoint resets it, so a
/// burst does not leave a large WAL behind forever: 64 MiB, above the
/// ~40 MiB the autocheckpoint lets it reach in steady state.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;

/// Provider handshakes and event marks (issue 16). `events.marks` is
/// `model::EventMarks` as JSON, NULL when nothing is marked (nearly every
/// event); it comes after `payload`, which the open-time scans never reach,
/// and is read only with the payload.
const V3: &str = "
ALTER TABLE events ADD COLUMN marks TEXT;
ALTER TABLE inputs ADD COLUMN handshakes INTEGER NOT NULL DEFAULT 1;
";

const V1: &str = "
CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,
    label            TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    poll_secret_hash TEXT
) STRICT;

CREATE TABLE buckets (
    id                TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    name              TEXT NOT NULL,
    -- The auth settings as JSON (a password or token for basic and token
    -- auth), sealed (crate::sealed) under the key named by auth_key.
    auth              BLOB NOT NULL,
    auth_key          INTEGER NOT NULL,
    ephemeral         INTEGER NOT NULL,
    retention_seconds INTEGER NOT NULL,
    catchup_seconds   INTEGER NOT NULL,
    enabled           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    UNIQUE (tenant, name)
) STRICT;

CREATE TABLE inputs (
    id                          TEXT PRIMARY KEY,
    tenant                      TEXT NOT NULL,
    bucket                      TEXT NOT NULL,
    name                        TEXT,
    integration                 TEXT,
    generic_hmac                TEXT,
    -- The secrets as a JSON list, sealed (see crate::sealed) under the
    -- key named by secrets_key.
    secrets                     BLOB NOT NULL,
    secrets_key                 INTEGER NOT NULL,
    response                    TEXT NOT NULL,
    enabled                     INTEGER NOT NULL,
    body_limit                  INTEGER,
    rate_limit                  TEXT,
    timestamp_tolerance_seconds INTEGER NOT NULL,
    created_at                  INTEGER NOT NULL,
    UNIQUE (tenant, name)
) STRICT;
CREATE INDEX inputs_by_bucket ON inputs (tenant, bucket);

CREATE TABLE outputs (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    url        TEXT NOT NULL,
    internal   INTEGER NOT NULL,
    timeout_ms INTEGER NOT NULL,
    headers    TEXT NOT NULL,
    retry      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outputs_by_bucket ON outputs (tenant, bucket);

CREATE TABLE tokens (
    key         TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    scope       TEXT NOT NULL,
    buckets     TEXT NOT NULL,
    mode        TEXT,
    description TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_by_tenant ON tokens (tenant);

-- A rowid table rather than WITHOUT ROWID: rows carry bodies up to 16 MiB,
-- which SQLite advises against keeping inside a clustered index.
-- payload is query, headers and body sealed together (crate::sealed) under
-- the key named by key_id; both are NULL for ephemeral events, whose
-- payload is never written anywhere. body_size stays.
--
-- Column order matters. A row too big for its page keeps only its first
-- bytes there (at least 489 with 4 KiB pages) and the rest in a chain of
-- overflow pages, which reading a later column walks. So the columns the
-- open-time scans read (id, tenant, input, received_at, dedup_expires_at,
-- delivery_id) come first, small and fixed before variable, and the large,
-- sender-controlled ones (path, payload) last: the scan never reads a body.
CREATE TABLE events (
    -- The rowid, named so that VACUUM keeps it: insertion order, which is
    -- id order (see below).
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL,
    tenant           TEXT NOT NULL,
    bucket           TEXT NOT NULL,
    input            TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    -- Until when delivery_id blocks a replay; rebuilds the in-memory dedup
    -- set at open (see crate::dedup).
    dedup_expires_at INTEGER,
    delivery_id      TEXT,
    integration      TEXT,
    method           TEXT NOT NULL,
    event_type       TEXT,
    event_count      INTEGER NOT NULL,
    verified         INTEGER NOT NULL,
    body_size        INTEGER NOT NULL,
    client_ip        TEXT NOT NULL,
    key_id           INTEGER,
    path             TEXT NOT NULL,
    payload          BLOB
) STRICT;
CREATE UNIQUE INDEX events_by_tenant ON events (tenant, id);
CREATE INDEX events_by_bucket ON events (tenant, bucket, id);
-- No index on received_at: rows are inserted in id order, so seq order is
-- time order, and the two reads at open (the newest id, the recent
-- delivery ids) walk seq backwards. One index less is one page less
-- in every commit's WAL frames.

-- One row per (event, output) for public outputs, and per (event, internal
-- output, agent group) once a group has subscribed to the bucket; until
-- then an internal output's row has a NULL group (see agent_groups).
-- `pending_since` is when the row last became pending (received, or reset
-- for a resend): the catch-up window is measured from it. Ids are ULIDs of
-- fixed width, so event_id order is receive order.
CREATE TABLE deliveries (
    tenant          TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    output_id       TEXT NOT NULL,
    grp             TEXT,
    internal        INTEGER NOT NULL,
    state           TEXT NOT NULL,
    tries           INTEGER NOT NULL,
    pending_since   INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        TEXT NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_by_event ON deliveries (tenant, event_id, output_id);
-- The dispatch queues: partial, so delivered rows leave them.
-- internal and next_attempt_at ride along so the due query filters, and
-- finds the next retry time, without reading the table.
CREATE INDEX deliveries_pending
    ON deliveries (tenant, bucket, grp, event_id, internal, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX deliveries_public ON deliveries (next_attempt_at)
    WHERE state = 'pending' AND internal = 0;

-- Agent groups that ever subscribed to a bucket: each gets its own
-- delivery of every later event (DESIGN §1, agent group).
CREATE TABLE agent_groups (
    tenant     TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    grp        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, bucket, grp)
) STRICT, WITHOUT ROWID;

-- Small store-wide values. `high_water`: an event id at or above every id
-- handed out, raised by the jobs that delete events (before they delete),
-- so the id mint seeded at open stays above ids whose events are gone.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

";

/// Tunnels (DESIGN §10). The name is unique across tenants: it is a public
/// address. The auth is sealed like a bucket's.
const V4: &str = "
CREATE TABLE tunnels (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    auth        BLOB NOT NULL,
    auth_key    INTEGER NOT NULL,
    host_header TEXT,
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX tunnels_by_tenant ON tunnels (tenant, name);
";

/// Channels (DESIGN §12): found by the digest of their capability, which
/// is unique across tenants (it is a public address).
const V_CHANNELS: &str = "
CREATE TABLE channels (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    cap_sha256 TEXT NOT NULL UNIQUE,
    cursor     TEXT,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX channels_by_bucket ON channels (tenant, bucket, created_at);
";

/// Functions (DESIGN §9): the source in the clear (it is code, shown back
/// to the tenant), the config sealed like a bucket's auth, bound to the
/// function id. Inputs and outputs name the function they run.
const V_FUNCTIONS: &str = "
CREATE TABLE functions (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    source      TEXT NOT NULL,
    config      BLOB NOT NULL,
    config_key  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX functions_by_tenant ON functions (tenant, created_at);
ALTER TABLE inputs ADD COLUMN function_id TEXT;
ALTER TABLE outputs ADD COLUMN function_id TEXT;
";

/// Opens the single write connection, sets WAL and durable commits, and
/// brings the schema up to date.
pub(super) fn open_writer(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    stable_plans(&conn)?;
    // Pages freed by retention go to the freelist and are reused by later
    // events; INCREMENTAL also lets retention hand them back to the file
    // system (`PRAGMA incremental_vacuum`, see retention::purge) so the file
    // shrinks after a burst. Only takes effect on a new file, before its
    // first table, which is the only kind V1 creates.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(db_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable(format!(
            "the database refused WAL mode (got {mode})"
        )));
    }
    // FULL: in WAL mode every COMMIT is fsynced, so an acknowledged append
    // survives power loss. NORMAL would only survive a process crash.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_err)?;
    // Referential cleanup is done explicitly (delete_tenant, delete_bucket):
    // foreign key checks would cost a parent lookup per delivery row on the
    // hot append path for no guarantee we do not already keep.
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(db_err)?;
    // An admin job's SAVEPOINT copies the pages it first touches to a
    // sub-journal; on disk that is a temp-file write per page per job, which
    // profiling showed as the writer's largest cost. The sub-journal only
    // serves rolling back a savepoint inside a live transaction, so memory
    // is enough: durability comes from the WAL.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(db_err)?;
    // Checkpoints run inside the writer's commits. Every 10,000 pages
    // (~40 MiB of WAL) instead of SQLite's 1,000 copies a hot index page
    // once rather than ten times: measured +25% appends/s under load.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(db_err)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        .map_err(db_err)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection; the writer must have created the file.
pub(super) fn open_reader(path: &std::path::Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    stable_plans(&conn)?;
    Ok(conn)
}

/// The query planner stability guarantee: a cached statement keeps its
/// plan whatever is bound to it. Without it, the bundled SQLite's STAT4
/// re-prepares a statement whenever a new binding might change the plan
/// (the hot queries' every call: measured with callgrind, QPSG took the
/// relay from 1.60 M to 0.87 M instructions per delivered event). Our
/// plans do not depend on values: partial indexes are matched by literals.
fn stable_plans(conn: &Connection) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
        .map_err(db_err)
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db_err)?;
    let target = MIGRATIONS.len() as i64;
    if version > target {
        return Err(Error::Corrupt(format!(
            "database schema version {version} is newer than this binary's {target}"
        )));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        // Each step and its version bump commit together, so a crash mid-way
        // leaves a database at a known version.
        let step = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            from + 1
        );
        if let Err(e) = conn.execute_batch(&step) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(db_err(e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(open_writer(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        assert!(matches!(open_writer(&path), Err(Error::Corrupt(_))));
    }

    #[test]
    fn the_open_time_scans_read_no_large_column() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("t.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info('events') ORDER BY cid")
            .unwrap();
        let columns: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let at = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let scanned = [
            "id",
            "tenant",
            "input",
            "received_at",
            "dedup_expires_at",
            "delivery_id",
        ];
        let large = ["path", "payload"];
        let last_scanned = scanned.iter().map(|c| at(c)).max().unwrap();
        let first_large = large.iter().map(|c| at(c)).min().unwrap();
        assert!(last_scanned < first_large, "{columns:?}");
        // Only V3's small `marks` follows the payload.
        let after: Vec<&str> = columns[at("payload") + 1..]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(after, ["marks"]);
    }
}
