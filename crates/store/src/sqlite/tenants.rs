//! [`Tenants`] on SQLite: tenants and tokens, the objects that exist before
//! any bucket. Writes run on the writer thread (inside a job's savepoint),
//! reads on a pooled read connection.

use async_trait::async_trait;
use model::{Tenant, TenantId, Token, TokenKey};
use rusqlite::{params, Connection};

use super::rows::{self, changed, db_err, exists, many, one, to_json};
use super::SqliteStore;
use crate::{Result, TenantRecord, Tenants};

pub(super) fn tenant_exists(conn: &Connection, id: &TenantId) -> Result<()> {
    exists(conn, "SELECT 1 FROM tenants WHERE id = ?1", [id.as_str()])
}

/// Every table with a `tenant` column; the tenant row itself goes last.
const TENANT_TABLES: &[&str] = &[
    "DELETE FROM tunnels WHERE tenant = ?1",
    "DELETE FROM functions WHERE tenant = ?1",
    "DELETE FROM deliveries WHERE tenant = ?1",
    "DELETE FROM agent_groups WHERE tenant = ?1",
    "DELETE FROM events WHERE tenant = ?1",
    "DELETE FROM tokens WHERE tenant = ?1",
    "DELETE FROM outputs WHERE tenant = ?1",
    "DELETE FROM inputs WHERE tenant = ?1",
    "DELETE FROM buckets WHERE tenant = ?1",
];

#[async_trait]
impl Tenants for SqliteStore {
    async fn create_tenant(&self, record: &TenantRecord) -> Result<()> {
        let r = record.clone();
        self.write_object(move |conn| {
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
        })
        .await
    }

    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        let id = id.clone();
        self.read(move |conn| {
            let sql = format!("SELECT {} FROM tenants WHERE id = ?1", rows::TENANT_COLS);
            one(conn, &sql, [id.as_str()], rows::tenant)
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let records = self
            .read(|conn| {
                let sql = format!("SELECT {} FROM tenants ORDER BY id", rows::TENANT_COLS);
                many(conn, &sql, [], rows::tenant)
            })
            .await?;
        Ok(records.into_iter().map(|r| r.tenant).collect())
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        let t = tenant.clone();
        self.write_object(move |conn| {
            changed(
                conn,
                "UPDATE tenants SET label = ?2, enabled = ?3 WHERE id = ?1",
                params![t.id.as_str(), t.label, t.enabled],
            )
            .map(drop)
        })
        .await
    }

    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()> {
        let (id, hash) = (id.clone(), hash.map(str::to_owned));
        self.write_object(move |conn| {
            changed(
                conn,
                "UPDATE tenants SET poll_secret_hash = ?2 WHERE id = ?1",
                params![id.as_str(), hash],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        let gone = id.clone();
        self.write_object(move |conn| {
            tenant_exists(conn, &gone)?;
            super::retention::keep_high_water(conn)?;
            for sql in TENANT_TABLES {
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.execute([gone.as_str()]))
                    .map_err(db_err)?;
            }
            changed(conn, "DELETE FROM tenants WHERE id = ?1", [gone.as_str()]).map(drop)
        })
        .await?;
        self.shared.dedup.forget_tenant(id);
        Ok(())
    }

    async fn create_token(&self, token: &Token) -> Result<()> {
        let t = token.clone();
        self.write_object(move |conn| {
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
        })
        .await
    }

    async fn token_by_key(&self, key: &TokenKey) -> Result<Token> {
        let key = key.clone();
        self.read(move |conn| {
            let sql = format!("SELECT {} FROM tokens WHERE key = ?1", rows::TOKEN_COLS);
            one(conn, &sql, [key.as_str()], rows::token)
        })
        .await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM tokens WHERE tenant = ?1 ORDER BY created_at, key",
                rows::TOKEN_COLS
            );
            many(conn, &sql, [tenant.as_str()], rows::token)
        })
        .await
    }

    /// Only the description and bucket list change. Scope and mode are fixed
    /// at creation (DESIGN §1), and the secret hash is never taken from an
    /// update: an object deserialised from an API body carries an empty one.
    async fn update_token(&self, token: &Token) -> Result<()> {
        let t = token.clone();
        self.write_object(move |conn| {
            let buckets = to_json(&t.buckets)?;
            changed(
                conn,
                "UPDATE tokens SET description = ?3, buckets = ?4 WHERE tenant = ?1 AND key = ?2",
                params![t.tenant.as_str(), t.key.as_str(), t.description, buckets],
            )
            .map(drop)
        })
        .await
    }

    async fn rotate_token_secret(
        &self,
        tenant: &TenantId,
        key: &TokenKey,
        secret_hash: &str,
    ) -> Result<()> {
        let (tenant, key, hash) = (tenant.clone(), key.clone(), secret_hash.to_owned());
        self.write_object(move |conn| {
            changed(
                conn,
                "UPDATE tokens SET secret_hash = ?3 WHERE tenant = ?1 AND key = ?2",
                params![tenant.as_str(), key.as_str(), hash],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()> {
        let (tenant, key) = (tenant.clone(), key.clone());
        self.write_object(move |conn| {
            changed(
                conn,
                "DELETE FROM tokens WHERE tenant = ?1 AND key = ?2",
                [tenant.as_str(), key.as_str()],
            )
            .map(drop)
        })
        .await
    }

    async fn has_admin_token(&self) -> Result<bool> {
        self.read(|conn| {
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE scope = 'admin')")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(db_err)
        })
        .await
    }
}
