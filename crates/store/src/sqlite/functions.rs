//! SQL of functions, and [`Functions`] for the embedded store: the config
//! sealed (bound to the function id), the source in the clear.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use crypto::Keyring;
use model::{Function, FunctionId, Secret, TenantId};
use rusqlite::{params, Connection, Row};

use super::rows::{changed, db_err, many, one, to_json};
use super::tenants::tenant_exists;
use super::SqliteStore;
use crate::{sealed, Error, Functions, Result};

const COLS: &str = "id, tenant, name, language, source, config, version, created_at, updated_at";

fn row(row: &Row<'_>, keys: &Keyring) -> Result<Function> {
    let id: String = row.get(0).map_err(db_err)?;
    let config =
        sealed::open_function_config(keys, &id, &row.get::<_, Vec<u8>>(5).map_err(db_err)?)?;
    let config: BTreeMap<String, String> = serde_json::from_slice(&config)
        .map_err(|e| Error::Corrupt(format!("config of function {id}: {e}")))?;
    let tenant: String = row.get(1).map_err(db_err)?;
    let corrupt = |e: model::IdError| Error::Corrupt(e.to_string());
    Ok(Function {
        id: id.parse().map_err(corrupt)?,
        tenant: tenant.parse().map_err(corrupt)?,
        name: row.get(2).map_err(db_err)?,
        language: row.get(3).map_err(db_err)?,
        source: row.get(4).map_err(db_err)?,
        config: config
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect(),
        version: row.get::<_, i64>(6).map_err(db_err)? as u64,
        created_at: row.get(7).map_err(db_err)?,
        updated_at: row.get(8).map_err(db_err)?,
    })
}

fn sealed_config(f: &Function, keys: &Keyring) -> Result<(Vec<u8>, u32)> {
    let (config, key) =
        sealed::seal_function_config(keys, f.id.as_str(), &to_json(&f.sealable_config())?)?;
    Ok((config, key.0))
}

fn create(conn: &Connection, f: &Function, keys: &Keyring) -> Result<()> {
    tenant_exists(conn, &f.tenant)?;
    let (config, key) = sealed_config(f, keys)?;
    conn.prepare_cached(
        "INSERT INTO functions (id, tenant, name, language, source, config, config_key, version,
                                created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            f.id.as_str(),
            f.tenant.as_str(),
            f.name,
            f.language,
            f.source,
            config,
            key,
            f.version as i64,
            f.created_at,
            f.updated_at,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

fn update(conn: &Connection, f: &Function, keys: &Keyring) -> Result<()> {
    let (config, key) = sealed_config(f, keys)?;
    changed(
        conn,
        "UPDATE functions SET name = ?3, source = ?4, config = ?5, config_key = ?6,
                version = ?7, updated_at = ?8
         WHERE tenant = ?1 AND id = ?2",
        params![
            f.tenant.as_str(),
            f.id.as_str(),
            f.name,
            f.source,
            config,
            key,
            f.version as i64,
            f.updated_at,
        ],
    )
    .map(drop)
}

#[async_trait]
impl Functions for SqliteStore {
    async fn create_function(&self, function: &Function) -> Result<()> {
        let (function, keys) = (function.clone(), Arc::clone(&self.keys));
        self.write(move |c| create(c, &function, &keys)).await
    }

    async fn function(&self, tenant: &TenantId, id: &FunctionId) -> Result<Function> {
        let (tenant, id, keys) = (tenant.clone(), id.clone(), Arc::clone(&self.keys));
        self.read(move |c| {
            let sql = format!("SELECT {COLS} FROM functions WHERE tenant = ?1 AND id = ?2");
            one(c, &sql, [tenant.as_str(), id.as_str()], |r| row(r, &keys))
        })
        .await
    }

    async fn list_functions(&self, tenant: &TenantId) -> Result<Vec<Function>> {
        let (tenant, keys) = (tenant.clone(), Arc::clone(&self.keys));
        self.read(move |c| {
            let sql =
                format!("SELECT {COLS} FROM functions WHERE tenant = ?1 ORDER BY created_at, id");
            many(c, &sql, [tenant.as_str()], |r| row(r, &keys))
        })
        .await
    }

    async fn update_function(&self, function: &Function) -> Result<()> {
        let (function, keys) = (function.clone(), Arc::clone(&self.keys));
        self.write(move |c| update(c, &function, &keys)).await
    }

    async fn delete_function(&self, tenant: &TenantId, id: &FunctionId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(move |c| {
            changed(
                c,
                "DELETE FROM functions WHERE tenant = ?1 AND id = ?2",
                [tenant.as_str(), id.as_str()],
            )
            .map(drop)
        })
        .await
    }
}
