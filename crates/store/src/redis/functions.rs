//! Functions in Redis: the record is the hash `fn:<id>` under the tenant's
//! prefix (`json` without the config, `cfg` the config sealed, bound to
//! the id), the tenant's ids in the set `functions`. A tenant's delete
//! takes them with the rest of its prefix.

use std::collections::BTreeMap;

use async_trait::async_trait;
use model::{Function, FunctionId, Secret, TenantId};

use super::codec::{field, from_json, to_json, unavailable};
use super::{Inner, RedisStore};
use crate::{sealed, Error, Functions, Result};

/// Writes the record `KEYS[2]` if the tenant `KEYS[1]` exists (and, for an
/// update, the record does): `ARGV` = mode, json, sealed config, id.
const PUT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'nf' end
local exists = redis.call('EXISTS', KEYS[2]) == 1
if ARGV[1] == 'update' and not exists then return 'nf' end
if ARGV[1] == 'create' and exists then return 'conflict' end
redis.call('HSET', KEYS[2], 'json', ARGV[2], 'cfg', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return 'ok'
";

impl Inner {
    fn function_key(&self, tenant: &TenantId, id: &str) -> String {
        format!("{}fn:{id}", self.keys.tenant(tenant))
    }

    async fn put_function(&self, f: &Function, mode: &str) -> Result<()> {
        let (config, _) = sealed::seal_function_config(
            &self.crypto,
            f.id.as_str(),
            &to_json(&f.sealable_config())?,
        )?;
        let mut plain = f.clone();
        plain.config = BTreeMap::new();
        let prefix = self.keys.tenant(&f.tenant);
        let mut con = self.con()?;
        let answer: String = redis::Script::new(PUT)
            .key(format!("{prefix}t"))
            .key(self.function_key(&f.tenant, f.id.as_str()))
            .key(format!("{prefix}functions"))
            .arg(mode)
            .arg(to_json(&plain)?)
            .arg(config)
            .arg(f.id.as_str())
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        match answer.as_str() {
            "ok" => Ok(()),
            "nf" => Err(Error::NotFound),
            _ => Err(Error::Conflict("id")),
        }
    }

    async fn read_function(&self, tenant: &TenantId, id: &str) -> Result<Function> {
        let f = self
            .hash(self.function_key(tenant, id))
            .await?
            .ok_or(Error::NotFound)?;
        let mut function: Function = from_json(field(&f, "json", "function")?, "function")?;
        let config = sealed::open_function_config(&self.crypto, id, field(&f, "cfg", "function")?)?;
        let config: BTreeMap<String, String> = from_json(&config, "function config")?;
        function.config = config
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect();
        // A record under another tenant's prefix cannot exist, but the
        // tenant inside the JSON is what a caller acts on: check it.
        if &function.tenant != tenant {
            return Err(Error::NotFound);
        }
        Ok(function)
    }
}

#[async_trait]
impl Functions for RedisStore {
    async fn create_function(&self, function: &Function) -> Result<()> {
        self.inner.put_function(function, "create").await
    }

    async fn function(&self, tenant: &TenantId, id: &FunctionId) -> Result<Function> {
        self.inner.read_function(tenant, id.as_str()).await
    }

    async fn list_functions(&self, tenant: &TenantId) -> Result<Vec<Function>> {
        let ids = self
            .inner
            .members(format!("{}functions", self.inner.keys.tenant(tenant)))
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.inner.read_function(tenant, &id).await {
                Ok(f) => out.push(f),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        Ok(out)
    }

    async fn update_function(&self, function: &Function) -> Result<()> {
        self.inner.put_function(function, "update").await
    }

    async fn delete_function(&self, tenant: &TenantId, id: &FunctionId) -> Result<()> {
        let inner = &self.inner;
        let key = inner.function_key(tenant, id.as_str());
        let mut con = inner.con()?;
        let (removed, _): (u64, u64) = redis::pipe()
            .atomic()
            .del(&key)
            .srem(
                format!("{}functions", inner.keys.tenant(tenant)),
                id.as_str(),
            )
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        if removed == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }
}
