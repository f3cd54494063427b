//! SQL of the administered objects: tenants, buckets, inputs, outputs and
//! tokens. Writes run on the writer thread (inside a job's savepoint), reads
//! on a pooled read connection; both are plain functions of a `Connection`.
//!
//! Every statement about a tenant's object filters on `tenant`, so another
//! tenant's id behaves exactly like an unknown one (`NotFound`).

use model::{Bucket, BucketId, Input, InputId, Output, OutputId, TenantId, Token, TokenKey};
use rusqlite::{params, Connection, OptionalExtension, Params};

use super::rows::{self, db_err, int, to_json};
use crate::{Error, Result, TenantRecord};

/// Runs a write and turns "no row matched" into `NotFound`.
fn changed(conn: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    let n = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(db_err)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(n)
}

fn exists(conn: &Connection, sql: &str, params: impl Params) -> Result<()> {
    let found = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |_| Ok(())).optional())
        .map_err(db_err)?;
    found.ok_or(Error::NotFound)
}

fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<T> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(row) => decode(row),
        None => Err(Error::NotFound),
    }
}

fn many<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query(params).map_err(db_err)?;
    rows::collect(rows, decode)
}

fn tenant_exists(conn: &Connection, id: &TenantId) -> Result<()> {
    exists(conn, "SELECT 1 FROM tenants WHERE id = ?1", [id.as_str()])
}

fn bucket_exists(conn: &Connection, tenant: &TenantId, id: &BucketId) -> Result<()> {
    exists(
        conn,
        "SELECT 1 FROM buckets WHERE tenant = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
}

// ---- tenants ----

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
    "DELETE FROM deliveries WHERE tenant = ?1",
    "DELETE FROM events WHERE tenant = ?1",
    "DELETE FROM dedup WHERE tenant = ?1",
    "DELETE FROM tokens WHERE tenant = ?1",
    "DELETE FROM outputs WHERE tenant = ?1",
    "DELETE FROM inputs WHERE tenant = ?1",
    "DELETE FROM buckets WHERE tenant = ?1",
];

pub(super) fn delete_tenant(conn: &Connection, id: &TenantId) -> Result<()> {
    tenant_exists(conn, id)?;
    for sql in TENANT_TABLES {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([id.as_str()]))
            .map_err(db_err)?;
    }
    changed(conn, "DELETE FROM tenants WHERE id = ?1", [id.as_str()]).map(drop)
}

// ---- buckets ----

pub(super) fn create_bucket(conn: &Connection, b: &Bucket) -> Result<()> {
    tenant_exists(conn, &b.tenant)?;
    let auth = to_json(&b.auth)?;
    conn.prepare_cached(
        "INSERT INTO buckets (id, tenant, name, auth, ephemeral, retention_seconds,
                              catchup_seconds, enabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            b.id.as_str(),
            b.tenant.as_str(),
            b.name,
            auth,
            b.ephemeral,
            int(b.retention_seconds),
            int(b.catchup_seconds),
            b.enabled,
            b.created_at,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn bucket(conn: &Connection, tenant: &TenantId, id: &BucketId) -> Result<Bucket> {
    let sql = format!(
        "SELECT {} FROM buckets WHERE tenant = ?1 AND id = ?2",
        rows::BUCKET_COLS
    );
    one(conn, &sql, [tenant.as_str(), id.as_str()], rows::bucket)
}

pub(super) fn bucket_by_name(conn: &Connection, tenant: &TenantId, name: &str) -> Result<Bucket> {
    let sql = format!(
        "SELECT {} FROM buckets WHERE tenant = ?1 AND name = ?2",
        rows::BUCKET_COLS
    );
    one(conn, &sql, [tenant.as_str(), name], rows::bucket)
}

pub(super) fn list_buckets(conn: &Connection, tenant: &TenantId) -> Result<Vec<Bucket>> {
    let sql = format!(
        "SELECT {} FROM buckets WHERE tenant = ?1 ORDER BY name",
        rows::BUCKET_COLS
    );
    many(conn, &sql, [tenant.as_str()], rows::bucket)
}

pub(super) fn update_bucket(conn: &Connection, b: &Bucket) -> Result<()> {
    let auth = to_json(&b.auth)?;
    changed(
        conn,
        "UPDATE buckets SET name = ?3, auth = ?4, ephemeral = ?5, retention_seconds = ?6,
                catchup_seconds = ?7, enabled = ?8
         WHERE tenant = ?1 AND id = ?2",
        params![
            b.tenant.as_str(),
            b.id.as_str(),
            b.name,
            auth,
            b.ephemeral,
            int(b.retention_seconds),
            int(b.catchup_seconds),
            b.enabled,
        ],
    )
    .map(drop)
}

/// Children first, so a failure half-way leaves nothing orphaned; the
/// savepoint makes the whole delete atomic anyway. Deleting a large bucket
/// holds the writer for as long as its events take to delete.
const BUCKET_CHILDREN: &[&str] = &[
    "DELETE FROM deliveries WHERE tenant = ?1
       AND event_id IN (SELECT id FROM events WHERE tenant = ?1 AND bucket = ?2)",
    "DELETE FROM events WHERE tenant = ?1 AND bucket = ?2",
    "DELETE FROM dedup WHERE tenant = ?1
       AND input IN (SELECT id FROM inputs WHERE tenant = ?1 AND bucket = ?2)",
    "DELETE FROM inputs WHERE tenant = ?1 AND bucket = ?2",
    "DELETE FROM outputs WHERE tenant = ?1 AND bucket = ?2",
];

pub(super) fn delete_bucket(conn: &Connection, tenant: &TenantId, id: &BucketId) -> Result<()> {
    bucket_exists(conn, tenant, id)?;
    for sql in BUCKET_CHILDREN {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([tenant.as_str(), id.as_str()]))
            .map_err(db_err)?;
    }
    changed(
        conn,
        "DELETE FROM buckets WHERE tenant = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
    .map(drop)
}

// ---- inputs ----

/// The JSON-encoded columns of an input, shared by create and update.
struct InputJson {
    generic_hmac: Option<String>,
    secrets: String,
    response: String,
    rate_limit: Option<String>,
}

impl InputJson {
    fn of(i: &Input) -> Result<Self> {
        // Secrets are skipped by the model's serde, so they get their own
        // column, written explicitly.
        let secrets: Vec<&str> = i.secrets.iter().map(|s| s.expose()).collect();
        Ok(Self {
            generic_hmac: i.generic_hmac.as_ref().map(to_json).transpose()?,
            secrets: to_json(&secrets)?,
            response: to_json(&i.response)?,
            rate_limit: i.rate_limit.as_ref().map(to_json).transpose()?,
        })
    }
}

pub(super) fn create_input(conn: &Connection, i: &Input) -> Result<()> {
    bucket_exists(conn, &i.tenant, &i.bucket)?;
    let j = InputJson::of(i)?;
    conn.prepare_cached(
        "INSERT INTO inputs (id, tenant, bucket, name, integration, generic_hmac, secrets,
                             response, enabled, body_limit, rate_limit,
                             timestamp_tolerance_seconds, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            i.id.to_string(),
            i.tenant.as_str(),
            i.bucket.as_str(),
            i.name,
            i.integration.map(|k| k.name()),
            j.generic_hmac,
            j.secrets,
            j.response,
            i.enabled,
            i.body_limit.map(int),
            j.rate_limit,
            int(i.timestamp_tolerance_seconds),
            i.created_at,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn input(conn: &Connection, tenant: &TenantId, id: &InputId) -> Result<Input> {
    let sql = format!(
        "SELECT {} FROM inputs WHERE tenant = ?1 AND id = ?2",
        rows::INPUT_COLS
    );
    one(conn, &sql, [tenant.as_str(), &id.to_string()], rows::input)
}

pub(super) fn input_by_id(conn: &Connection, id: &InputId) -> Result<Input> {
    let sql = format!("SELECT {} FROM inputs WHERE id = ?1", rows::INPUT_COLS);
    one(conn, &sql, [id.to_string()], rows::input)
}

pub(super) fn input_by_name(conn: &Connection, tenant: &TenantId, name: &str) -> Result<Input> {
    let sql = format!(
        "SELECT {} FROM inputs WHERE tenant = ?1 AND name = ?2",
        rows::INPUT_COLS
    );
    one(conn, &sql, [tenant.as_str(), name], rows::input)
}

pub(super) fn list_inputs(
    conn: &Connection,
    tenant: &TenantId,
    bucket: &BucketId,
) -> Result<Vec<Input>> {
    let sql = format!(
        "SELECT {} FROM inputs WHERE tenant = ?1 AND bucket = ?2 ORDER BY created_at, id",
        rows::INPUT_COLS
    );
    many(conn, &sql, [tenant.as_str(), bucket.as_str()], rows::input)
}

/// The bucket and creation time of an input are fixed; the rest is replaced.
pub(super) fn update_input(conn: &Connection, i: &Input) -> Result<()> {
    let j = InputJson::of(i)?;
    changed(
        conn,
        "UPDATE inputs SET name = ?3, integration = ?4, generic_hmac = ?5, secrets = ?6,
                response = ?7, enabled = ?8, body_limit = ?9, rate_limit = ?10,
                timestamp_tolerance_seconds = ?11
         WHERE tenant = ?1 AND id = ?2",
        params![
            i.tenant.as_str(),
            i.id.to_string(),
            i.name,
            i.integration.map(|k| k.name()),
            j.generic_hmac,
            j.secrets,
            j.response,
            i.enabled,
            i.body_limit.map(int),
            j.rate_limit,
            int(i.timestamp_tolerance_seconds),
        ],
    )
    .map(drop)
}

pub(super) fn delete_input(conn: &Connection, tenant: &TenantId, id: &InputId) -> Result<()> {
    changed(
        conn,
        "DELETE FROM inputs WHERE tenant = ?1 AND id = ?2",
        [tenant.as_str(), &id.to_string()],
    )
    .map(drop)
}

// ---- outputs ----

pub(super) fn create_output(conn: &Connection, o: &Output) -> Result<()> {
    bucket_exists(conn, &o.tenant, &o.bucket)?;
    let (headers, retry) = (to_json(&o.headers)?, to_json(&o.retry)?);
    conn.prepare_cached(
        "INSERT INTO outputs (id, tenant, bucket, url, internal, timeout_ms, headers, retry,
                              created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            o.id.as_str(),
            o.tenant.as_str(),
            o.bucket.as_str(),
            o.url,
            o.internal,
            int(o.timeout_ms),
            headers,
            retry,
            o.created_at,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn output(conn: &Connection, tenant: &TenantId, id: &OutputId) -> Result<Output> {
    let sql = format!(
        "SELECT {} FROM outputs WHERE tenant = ?1 AND id = ?2",
        rows::OUTPUT_COLS
    );
    one(conn, &sql, [tenant.as_str(), id.as_str()], rows::output)
}

pub(super) fn list_outputs(
    conn: &Connection,
    tenant: &TenantId,
    bucket: &BucketId,
) -> Result<Vec<Output>> {
    let sql = format!(
        "SELECT {} FROM outputs WHERE tenant = ?1 AND bucket = ?2 ORDER BY created_at, id",
        rows::OUTPUT_COLS
    );
    many(conn, &sql, [tenant.as_str(), bucket.as_str()], rows::output)
}

/// The bucket and creation time of an output are fixed.
pub(super) fn update_output(conn: &Connection, o: &Output) -> Result<()> {
    let (headers, retry) = (to_json(&o.headers)?, to_json(&o.retry)?);
    changed(
        conn,
        "UPDATE outputs SET url = ?3, internal = ?4, timeout_ms = ?5, headers = ?6, retry = ?7
         WHERE tenant = ?1 AND id = ?2",
        params![
            o.tenant.as_str(),
            o.id.as_str(),
            o.url,
            o.internal,
            int(o.timeout_ms),
            headers,
            retry
        ],
    )
    .map(drop)
}

/// Delivery rows of the output stay as history until retention removes
/// their events; delivery looks outputs up and skips missing ones.
pub(super) fn delete_output(conn: &Connection, tenant: &TenantId, id: &OutputId) -> Result<()> {
    changed(
        conn,
        "DELETE FROM outputs WHERE tenant = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
    .map(drop)
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
