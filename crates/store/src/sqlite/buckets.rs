//! [`Buckets`] on SQLite: buckets and what hangs off them, inputs and
//! outputs. Writes run on the writer thread (inside a job's savepoint),
//! reads on a pooled read connection.
//!
//! Every statement about a tenant's object filters on `tenant`, so another
//! tenant's id behaves exactly like an unknown one (`NotFound`).

use std::sync::Arc;

use async_trait::async_trait;
use crypto::Keyring;
use model::{Bucket, BucketId, Input, InputId, Output, OutputId, TenantId};
use rusqlite::{params, Connection};

use super::rows::{self, changed, db_err, exists, int, many, one, to_json};
use super::tenants::tenant_exists;
use super::SqliteStore;
use crate::{sealed, Buckets, Result};

fn bucket_exists(conn: &Connection, tenant: &TenantId, id: &BucketId) -> Result<()> {
    exists(
        conn,
        "SELECT 1 FROM buckets WHERE tenant = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
}

/// A bucket's auth settings, sealed, and the key that sealed them.
fn sealed_auth(b: &Bucket, keys: &Keyring) -> Result<(Vec<u8>, u32)> {
    let (auth, key) = sealed::seal_bucket_auth(keys, b.id.as_str(), &to_json(&b.auth.sealable())?)?;
    Ok((auth, key.0))
}

/// Children first, so a failure half-way leaves nothing orphaned; the
/// savepoint makes the whole delete atomic anyway. Deleting a large bucket
/// holds the writer for as long as its events take to delete.
const BUCKET_CHILDREN: &[&str] = &[
    "DELETE FROM deliveries WHERE tenant = ?1 AND bucket = ?2",
    "DELETE FROM agent_groups WHERE tenant = ?1 AND bucket = ?2",
    "DELETE FROM events WHERE tenant = ?1 AND bucket = ?2",
    "DELETE FROM inputs WHERE tenant = ?1 AND bucket = ?2",
    "DELETE FROM outputs WHERE tenant = ?1 AND bucket = ?2",
];

/// The encoded columns of an input, shared by create and update.
struct InputJson {
    generic_hmac: Option<String>,
    /// The secrets' JSON list, sealed.
    secrets: Vec<u8>,
    secrets_key: u32,
    response: String,
    rate_limit: Option<String>,
}

impl InputJson {
    fn of(i: &Input, keys: &Keyring) -> Result<Self> {
        // Secrets are skipped by the model's serde, so they get their own
        // column, written explicitly, and only ever sealed.
        let secrets: Vec<&str> = i.secrets.iter().map(|s| s.expose()).collect();
        let (secrets, key) = sealed::seal_secrets(keys, &i.id.to_string(), &to_json(&secrets)?)?;
        Ok(Self {
            generic_hmac: i.generic_hmac.as_ref().map(to_json).transpose()?,
            secrets,
            secrets_key: key.0,
            response: to_json(&i.response)?,
            rate_limit: i.rate_limit.as_ref().map(to_json).transpose()?,
        })
    }
}

#[async_trait]
impl Buckets for SqliteStore {
    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        let (b, keys) = (bucket.clone(), Arc::clone(&self.keys));
        self.write_object(move |conn| {
            tenant_exists(conn, &b.tenant)?;
            let (auth, auth_key) = sealed_auth(&b, &keys)?;
            conn.prepare_cached(
                "INSERT INTO buckets (id, tenant, name, auth, ephemeral, retention_seconds,
                                      catchup_seconds, enabled, created_at, auth_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                    auth_key,
                ])
            })
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket> {
        let (tenant, id, keys) = (tenant.clone(), id.clone(), Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM buckets WHERE tenant = ?1 AND id = ?2",
                rows::BUCKET_COLS
            );
            one(conn, &sql, [tenant.as_str(), id.as_str()], |r| {
                rows::bucket(r, &keys)
            })
        })
        .await
    }

    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket> {
        let (tenant, name, keys) = (tenant.clone(), name.to_owned(), Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM buckets WHERE tenant = ?1 AND name = ?2",
                rows::BUCKET_COLS
            );
            one(conn, &sql, [tenant.as_str(), &name], |r| {
                rows::bucket(r, &keys)
            })
        })
        .await
    }

    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>> {
        let (tenant, keys) = (tenant.clone(), Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM buckets WHERE tenant = ?1 ORDER BY name",
                rows::BUCKET_COLS
            );
            many(conn, &sql, [tenant.as_str()], |r| rows::bucket(r, &keys))
        })
        .await
    }

    async fn update_bucket(&self, bucket: &Bucket) -> Result<()> {
        let (b, keys) = (bucket.clone(), Arc::clone(&self.keys));
        self.write_object(move |conn| {
            let (auth, auth_key) = sealed_auth(&b, &keys)?;
            changed(
                conn,
                "UPDATE buckets SET name = ?3, auth = ?4, ephemeral = ?5, retention_seconds = ?6,
                        catchup_seconds = ?7, enabled = ?8, auth_key = ?9
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
                    auth_key,
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write_object(move |conn| {
            bucket_exists(conn, &tenant, &id)?;
            super::retention::keep_high_water(conn)?;
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
        })
        .await
    }

    async fn create_input(&self, input: &Input) -> Result<()> {
        let (i, keys) = (input.clone(), Arc::clone(&self.keys));
        self.write_object(move |conn| {
            bucket_exists(conn, &i.tenant, &i.bucket)?;
            let j = InputJson::of(&i, &keys)?;
            conn.prepare_cached(
                "INSERT INTO inputs (id, tenant, bucket, name, integration, generic_hmac, secrets,
                                     response, enabled, body_limit, rate_limit,
                                     timestamp_tolerance_seconds, created_at, secrets_key,
                                     handshakes, function_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
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
                    j.secrets_key,
                    i.handshakes,
                    i.function_id.as_ref().map(|f| f.as_str()),
                ])
            })
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input> {
        let (tenant, id, keys) = (tenant.clone(), *id, Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM inputs WHERE tenant = ?1 AND id = ?2",
                rows::INPUT_COLS
            );
            one(conn, &sql, [tenant.as_str(), &id.to_string()], |r| {
                rows::input(r, &keys)
            })
        })
        .await
    }

    async fn input_by_id(&self, id: &InputId) -> Result<Input> {
        let (id, keys) = (*id, Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!("SELECT {} FROM inputs WHERE id = ?1", rows::INPUT_COLS);
            one(conn, &sql, [id.to_string()], |r| rows::input(r, &keys))
        })
        .await
    }

    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input> {
        let (tenant, name, keys) = (tenant.clone(), name.to_owned(), Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM inputs WHERE tenant = ?1 AND name = ?2",
                rows::INPUT_COLS
            );
            one(conn, &sql, [tenant.as_str(), &name], |r| {
                rows::input(r, &keys)
            })
        })
        .await
    }

    async fn list_inputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Input>> {
        let (tenant, bucket, keys) = (tenant.clone(), bucket.clone(), Arc::clone(&self.keys));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM inputs WHERE tenant = ?1 AND bucket = ?2 ORDER BY created_at, id",
                rows::INPUT_COLS
            );
            many(conn, &sql, [tenant.as_str(), bucket.as_str()], |r| {
                rows::input(r, &keys)
            })
        })
        .await
    }

    /// The bucket and creation time of an input are fixed; the rest is replaced.
    async fn update_input(&self, input: &Input) -> Result<()> {
        let (i, keys) = (input.clone(), Arc::clone(&self.keys));
        self.write_object(move |conn| {
            let j = InputJson::of(&i, &keys)?;
            changed(
                conn,
                "UPDATE inputs SET name = ?3, integration = ?4, generic_hmac = ?5, secrets = ?6,
                        response = ?7, enabled = ?8, body_limit = ?9, rate_limit = ?10,
                        timestamp_tolerance_seconds = ?11, secrets_key = ?12, handshakes = ?13,
                        function_id = ?14
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
                    j.secrets_key,
                    i.handshakes,
                    i.function_id.as_ref().map(|f| f.as_str()),
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), *id);
        self.write_object(move |conn| {
            changed(
                conn,
                "DELETE FROM inputs WHERE tenant = ?1 AND id = ?2",
                [tenant.as_str(), &id.to_string()],
            )
            .map(drop)
        })
        .await
    }

    async fn create_output(&self, output: &Output) -> Result<()> {
        let o = output.clone();
        self.write_object(move |conn| {
            bucket_exists(conn, &o.tenant, &o.bucket)?;
            let (headers, retry) = (to_json(&o.headers)?, to_json(&o.retry)?);
            conn.prepare_cached(
                "INSERT INTO outputs (id, tenant, bucket, url, internal, timeout_ms, headers,
                                      retry, created_at, concurrency, ordered, function_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
                    o.concurrency,
                    o.ordered,
                    o.function_id.as_ref().map(|f| f.as_str()),
                ])
            })
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM outputs WHERE tenant = ?1 AND id = ?2",
                rows::OUTPUT_COLS
            );
            one(conn, &sql, [tenant.as_str(), id.as_str()], rows::output)
        })
        .await
    }

    async fn list_outputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Output>> {
        let (tenant, bucket) = (tenant.clone(), bucket.clone());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM outputs WHERE tenant = ?1 AND bucket = ?2 ORDER BY created_at, id",
                rows::OUTPUT_COLS
            );
            many(conn, &sql, [tenant.as_str(), bucket.as_str()], rows::output)
        })
        .await
    }

    /// The bucket and creation time of an output are fixed.
    async fn update_output(&self, output: &Output) -> Result<()> {
        let o = output.clone();
        self.write_object(move |conn| {
            let (headers, retry) = (to_json(&o.headers)?, to_json(&o.retry)?);
            changed(
                conn,
                "UPDATE outputs SET url = ?3, internal = ?4, timeout_ms = ?5, headers = ?6,
                        retry = ?7, concurrency = ?8, ordered = ?9, function_id = ?10
                 WHERE tenant = ?1 AND id = ?2",
                params![
                    o.tenant.as_str(),
                    o.id.as_str(),
                    o.url,
                    o.internal,
                    int(o.timeout_ms),
                    headers,
                    retry,
                    o.concurrency,
                    o.ordered,
                    o.function_id.as_ref().map(|f| f.as_str()),
                ],
            )
            .map(drop)
        })
        .await
    }

    /// Delivery rows of the output stay as history until retention removes
    /// their events; delivery looks outputs up and skips missing ones.
    /// Also takes the output's unfinished deliveries out of the queues: left
    /// pending, they would fill the head of a due query forever.
    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write_object(move |conn| {
            changed(
                conn,
                "DELETE FROM outputs WHERE tenant = ?1 AND id = ?2",
                [tenant.as_str(), id.as_str()],
            )?;
            conn.prepare_cached(
                "DELETE FROM deliveries WHERE tenant = ?1 AND output_id = ?2
                   AND state IN ('pending', 'in_flight')",
            )
            .and_then(|mut s| s.execute([tenant.as_str(), id.as_str()]))
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
