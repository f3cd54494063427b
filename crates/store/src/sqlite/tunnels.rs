//! SQL of tunnels, and [`Tunnels`] for the embedded store. The name is
//! `UNIQUE` across the table (not per tenant): it is a public address.

use std::sync::Arc;

use async_trait::async_trait;
use crypto::Keyring;
use model::{TenantId, Tunnel, TunnelId};
use rusqlite::{params, Connection, Row};

use super::rows::{changed, db_err, many, one, to_json};
use super::tenants::tenant_exists;
use super::SqliteStore;
use crate::{sealed, Error, Result, Tunnels};

const COLS: &str = "id, tenant, name, auth, host_header, enabled, created_at";

fn row(row: &Row<'_>, keys: &Keyring) -> Result<Tunnel> {
    let id: String = row.get(0).map_err(db_err)?;
    let auth = sealed::open_tunnel_auth(keys, &id, &row.get::<_, Vec<u8>>(3).map_err(db_err)?)?;
    let tenant: String = row.get(1).map_err(db_err)?;
    let corrupt = |e: model::IdError| Error::Corrupt(e.to_string());
    Ok(Tunnel {
        auth: serde_json::from_slice(&auth)
            .map_err(|e| Error::Corrupt(format!("auth of tunnel {id}: {e}")))?,
        id: id.parse().map_err(corrupt)?,
        tenant: tenant.parse().map_err(corrupt)?,
        name: row.get(2).map_err(db_err)?,
        host_header: row.get(4).map_err(db_err)?,
        enabled: row.get(5).map_err(db_err)?,
        created_at: row.get(6).map_err(db_err)?,
    })
}

fn create(conn: &Connection, t: &Tunnel, keys: &Keyring) -> Result<()> {
    tenant_exists(conn, &t.tenant)?;
    let (auth, key) = sealed::seal_tunnel_auth(keys, t.id.as_str(), &to_json(&t.auth.sealable())?)?;
    conn.prepare_cached(
        "INSERT INTO tunnels (id, tenant, name, auth, auth_key, host_header, enabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.id.as_str(),
            t.tenant.as_str(),
            t.name,
            auth,
            key.0,
            t.host_header,
            t.enabled,
            t.created_at,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

fn update(conn: &Connection, t: &Tunnel, keys: &Keyring) -> Result<()> {
    let (auth, key) = sealed::seal_tunnel_auth(keys, t.id.as_str(), &to_json(&t.auth.sealable())?)?;
    changed(
        conn,
        "UPDATE tunnels SET name = ?3, auth = ?4, auth_key = ?5, host_header = ?6, enabled = ?7
         WHERE tenant = ?1 AND id = ?2",
        params![
            t.tenant.as_str(),
            t.id.as_str(),
            t.name,
            auth,
            key.0,
            t.host_header,
            t.enabled,
        ],
    )
    .map(drop)
}

#[async_trait]
impl Tunnels for SqliteStore {
    async fn create_tunnel(&self, tunnel: &Tunnel) -> Result<()> {
        let (tunnel, keys) = (tunnel.clone(), Arc::clone(&self.keys));
        self.write_object(move |c| create(c, &tunnel, &keys)).await
    }

    async fn tunnel(&self, tenant: &TenantId, id: &TunnelId) -> Result<Tunnel> {
        let (tenant, id, keys) = (tenant.clone(), id.clone(), Arc::clone(&self.keys));
        self.read(move |c| {
            let sql = format!("SELECT {COLS} FROM tunnels WHERE tenant = ?1 AND id = ?2");
            one(c, &sql, [tenant.as_str(), id.as_str()], |r| row(r, &keys))
        })
        .await
    }

    async fn tunnel_by_name(&self, name: &str) -> Result<Tunnel> {
        let (name, keys) = (name.to_owned(), Arc::clone(&self.keys));
        self.read(move |c| {
            let sql = format!("SELECT {COLS} FROM tunnels WHERE name = ?1");
            one(c, &sql, [name.as_str()], |r| row(r, &keys))
        })
        .await
    }

    async fn list_tunnels(&self, tenant: &TenantId) -> Result<Vec<Tunnel>> {
        let (tenant, keys) = (tenant.clone(), Arc::clone(&self.keys));
        self.read(move |c| {
            let sql = format!("SELECT {COLS} FROM tunnels WHERE tenant = ?1 ORDER BY name");
            many(c, &sql, [tenant.as_str()], |r| row(r, &keys))
        })
        .await
    }

    async fn update_tunnel(&self, tunnel: &Tunnel) -> Result<()> {
        let (tunnel, keys) = (tunnel.clone(), Arc::clone(&self.keys));
        self.write_object(move |c| update(c, &tunnel, &keys)).await
    }

    async fn delete_tunnel(&self, tenant: &TenantId, id: &TunnelId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write_object(move |c| {
            changed(
                c,
                "DELETE FROM tunnels WHERE tenant = ?1 AND id = ?2",
                [tenant.as_str(), id.as_str()],
            )
            .map(drop)
        })
        .await
    }
}
