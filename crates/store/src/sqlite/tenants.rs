//! SQL of tenants and tokens: the objects that exist before any bucket.
//! Writes run on the writer thread (inside a job's savepoint), reads on a
//! pooled read connection; both are plain functions of a `Connection`.

use model::{TenantId, Token, TokenKey};
use rusqlite::{params, Connection};

use super::rows::{self, changed, db_err, exists, many, one, to_json};
use crate::{Result, TenantRecord};

pub(super) fn tenant_exists(conn: &Connection, id: &TenantId) -> Result<()> {
    exists(conn, "SELECT 1 FROM tenants WHERE id = ?1", [id.as_str()])
}

pub(super) fn create_tenant(conn: &Connection, r: &TenantRecord) -> Result<()> {
    let t = &r.tenant;
    conn.prepare_cached(
        "INSERT INTO tenants (id, label, enabled, created_at, poll_secret_hash)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.id.as_str(),
            t.label,
            t.enabled,
            t.created_at,
            r.poll_secret_hash
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn tenant(conn: &Connection, id: &TenantId) -> Result<TenantRecord> {
    let sql = format!("SELECT {} FROM tenants WHERE id = ?1", rows::TENANT_COLS);
    one(conn, &sql, [id.as_str()], rows::tenant)
}

pub(super) fn list_tenants(conn: &Connection) -> Result<Vec<TenantRecord>> {
    let sql = format!("SELECT {} FROM tenants ORDER BY id", rows::TENANT_COLS);
    many(conn, &sql, [], rows::tenant)
}

pub(super) fn update_tenant(conn: &Connection, t: &model::Tenant) -> Result<()> {
    changed(
        conn,
        "UPDATE tenants SET label = ?2, enabled = ?3 WHERE id = ?1",
        params![t.id.as_str(), t.label, t.enabled],
    )
    .map(drop)
}

pub(super) fn set_poll_secret(conn: &Connection, id: &TenantId, hash: Option<&str>) -> Result<()> {
    changed(
        conn,
        "UPDATE tenants SET poll_secret_hash = ?2 WHERE id = ?1",
        params![id.as_str(), hash],
    )
    .map(drop)
}

/// Every table with a `tenant` column; the tenant row itself goes last.
const TENANT_TABLES: &[&str] = &[
    "DELETE FROM tunnels WHERE tenant = ?1",
    "DELETE FROM deliveries WHERE tenant = ?1",
    "DELETE FROM agent_groups WHERE tenant = ?1",
    "DELETE FROM events WHERE tenant = ?1",
    "DELETE FROM tokens WHERE tenant = ?1",
    "DELETE FROM outputs WHERE tenant = ?1",
    "DELETE FROM inputs WHERE tenant = ?1",
    "DELETE FROM buckets WHERE tenant = ?1",
];

pub(super) fn delete_tenant(conn: &Connection, id: &TenantId) -> Result<()> {
    tenant_exists(conn, id)?;
    super::events::keep_high_water(conn)?;
    for sql in TENANT_TABLES {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([id.as_str()]))
            .map_err(db_err)?;
    }
    changed(conn, "DELETE FROM tenants WHERE id = ?1", [id.as_str()]).map(drop)
}

// ---- tokens ----

pub(super) fn create_token(conn: &Connection, t: &Token) -> Result<()> {
    tenant_exists(conn, &t.tenant)?;
    let buckets = to_json(&t.buckets)?;
    conn.prepare_cached(
        "INSERT INTO tokens (key, tenant, scope, buckets, mode, description, secret_hash,
                             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.key.as_str(),
            t.tenant.as_str(),
            t.scope.name(),
            buckets,
            t.mode.map(rows::mode_name),
            t.description,
            t.secret_hash.expose(),
            t.created_at,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn token_by_key(conn: &Connection, key: &TokenKey) -> Result<Token> {
    let sql = format!("SELECT {} FROM tokens WHERE key = ?1", rows::TOKEN_COLS);
    one(conn, &sql, [key.as_str()], rows::token)
}

pub(super) fn list_tokens(conn: &Connection, tenant: &TenantId) -> Result<Vec<Token>> {
    let sql = format!(
        "SELECT {} FROM tokens WHERE tenant = ?1 ORDER BY created_at, key",
        rows::TOKEN_COLS
    );
    many(conn, &sql, [tenant.as_str()], rows::token)
}

/// Only the description and bucket list change. Scope and mode are fixed
/// at creation (DESIGN §1), and the secret hash is never taken from an
/// update: an object deserialised from an API body carries an empty one.
pub(super) fn update_token(conn: &Connection, t: &Token) -> Result<()> {
    let buckets = to_json(&t.buckets)?;
    changed(
        conn,
        "UPDATE tokens SET description = ?3, buckets = ?4 WHERE tenant = ?1 AND key = ?2",
        params![t.tenant.as_str(), t.key.as_str(), t.description, buckets],
    )
    .map(drop)
}

pub(super) fn set_token_secret(
    conn: &Connection,
    tenant: &TenantId,
    key: &TokenKey,
    secret_hash: &str,
) -> Result<()> {
    changed(
        conn,
        "UPDATE tokens SET secret_hash = ?3 WHERE tenant = ?1 AND key = ?2",
        params![tenant.as_str(), key.as_str(), secret_hash],
    )
    .map(drop)
}

pub(super) fn delete_token(conn: &Connection, tenant: &TenantId, key: &TokenKey) -> Result<()> {
    changed(
        conn,
        "DELETE FROM tokens WHERE tenant = ?1 AND key = ?2",
        [tenant.as_str(), key.as_str()],
    )
    .map(drop)
}

pub(super) fn has_admin_token(conn: &Connection) -> Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE scope = 'admin')")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db_err)
}
