//! Tunnels in Redis: the record is the hash `tun:<id>` under the tenant's
//! prefix (`json` without the auth, `auth` sealed), the tenant's ids in the
//! set `tunnels`, and the server-wide name index in the global hash
//! `{ns}:tname` (name → `<tenant> <id>`).
//!
//! A name is claimed in the global hash first (one key, one script: atomic
//! in Redis Cluster too, where the tenant's keys sit in another slot), then
//! the record is written; a claim whose record is gone (a deleted tenant,
//! or a crash between the two writes) is stale and may be taken over, so a
//! name is never lost for good.

use async_trait::async_trait;
use model::{BucketAuth, TenantId, Tunnel, TunnelId};
use redis::AsyncCommands;

use super::codec::{field, from_json, to_json, unavailable};
use super::{Inner, RedisStore};
use crate::{sealed, Error, Result, Tunnels};

/// Claims `ARGV[1]` for `ARGV[2]` in the name hash `KEYS[1]` unless it is
/// held by a live claim: `ARGV[3]` is the holder the caller found stale
/// (or empty), so the takeover is a compare-and-set.
const CLAIM: &str = r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and held ~= ARGV[3] and held ~= ARGV[2] then return 'taken' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 'ok'
";

/// Removes the claim on `ARGV[1]` if it is still `ARGV[2]`'s.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 'ok'
";

/// Writes the record `KEYS[2]` if the tenant `KEYS[1]` exists (and, for an
/// update, the record does): `ARGV` = mode, json, auth, name, id.
const PUT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'nf' end
local exists = redis.call('EXISTS', KEYS[2]) == 1
if ARGV[1] == 'update' and not exists then return 'nf' end
if ARGV[1] == 'create' and exists then return 'conflict' end
local old = redis.call('HGET', KEYS[2], 'name') or ''
redis.call('HSET', KEYS[2], 'json', ARGV[2], 'auth', ARGV[3], 'name', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
return 'ok:' .. old
";

impl Inner {
    fn tunnel_key(&self, tenant: &TenantId, id: &str) -> String {
        format!("{}tun:{id}", self.keys.tenant(tenant))
    }

    fn names_key(&self) -> String {
        self.keys.tunnel_names()
    }

    async fn claim_name(&self, name: &str, holder: &str) -> Result<()> {
        let mut con = self.con()?;
        let held: Option<String> = con
            .hget(self.names_key(), name)
            .await
            .map_err(unavailable)?;
        let stale = match held.as_deref() {
            Some(h) if h != holder && self.holder_alive(h).await? => {
                return Err(Error::Conflict("name"))
            }
            Some(h) => h.to_owned(),
            None => String::new(),
        };
        let answer: String = redis::Script::new(CLAIM)
            .key(self.names_key())
            .arg(name)
            .arg(holder)
            .arg(stale)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        match answer.as_str() {
            "ok" => Ok(()),
            _ => Err(Error::Conflict("name")),
        }
    }

    async fn release_name(&self, name: &str, holder: &str) -> Result<()> {
        let mut con = self.con()?;
        let _: String = redis::Script::new(RELEASE)
            .key(self.names_key())
            .arg(name)
            .arg(holder)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Whether the record a claim `<tenant> <id>` points to exists.
    async fn holder_alive(&self, holder: &str) -> Result<bool> {
        let Some((tenant, id)) = holder.split_once(' ') else {
            return Ok(false);
        };
        let Ok(tenant) = tenant.parse::<TenantId>() else {
            return Ok(false);
        };
        let mut con = self.con()?;
        con.exists(self.tunnel_key(&tenant, id))
            .await
            .map_err(unavailable)
    }

    /// Writes the record; answers the name it had before (empty if new).
    async fn put_tunnel(&self, t: &Tunnel, mode: &str) -> Result<String> {
        let (auth, _) =
            sealed::seal_tunnel_auth(&self.crypto, t.id.as_str(), &to_json(&t.auth.sealable())?)?;
        let mut plain = t.clone();
        plain.auth = BucketAuth::None;
        let prefix = self.keys.tenant(&t.tenant);
        let mut con = self.con()?;
        let answer: String = redis::Script::new(PUT)
            .key(format!("{prefix}t"))
            .key(self.tunnel_key(&t.tenant, t.id.as_str()))
            .key(format!("{prefix}tunnels"))
            .arg(mode)
            .arg(to_json(&plain)?)
            .arg(auth)
            .arg(&t.name)
            .arg(t.id.as_str())
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        match answer.strip_prefix("ok:") {
            Some(old) => {
                // Caches of tunnels by name (the relay's public side) drop
                // what they hold, here and on the other nodes.
                self.config_changed().await;
                Ok(old.to_owned())
            }
            None if answer == "nf" => Err(Error::NotFound),
            None => Err(Error::Conflict("id")),
        }
    }

    async fn read_tunnel(&self, tenant: &TenantId, id: &str) -> Result<Tunnel> {
        let f = self
            .hash(self.tunnel_key(tenant, id))
            .await?
            .ok_or(Error::NotFound)?;
        let mut t: Tunnel = from_json(field(&f, "json", "tunnel")?, "tunnel")?;
        let auth = sealed::open_tunnel_auth(&self.crypto, id, field(&f, "auth", "tunnel")?)?;
        t.auth = from_json(&auth, "tunnel auth")?;
        Ok(t)
    }
}

fn holder(t: &Tunnel) -> String {
    format!("{} {}", t.tenant.as_str(), t.id.as_str())
}

#[async_trait]
impl Tunnels for RedisStore {
    async fn create_tunnel(&self, tunnel: &Tunnel) -> Result<()> {
        let inner = &self.inner;
        inner.claim_name(&tunnel.name, &holder(tunnel)).await?;
        if let Err(err) = inner.put_tunnel(tunnel, "create").await {
            inner.release_name(&tunnel.name, &holder(tunnel)).await?;
            return Err(err);
        }
        inner.config_changed().await;
        Ok(())
    }

    async fn tunnel(&self, tenant: &TenantId, id: &TunnelId) -> Result<Tunnel> {
        self.inner.read_tunnel(tenant, id.as_str()).await
    }

    async fn tunnel_by_name(&self, name: &str) -> Result<Tunnel> {
        let mut con = self.inner.con()?;
        let held: Option<String> = con
            .hget(self.inner.names_key(), name)
            .await
            .map_err(unavailable)?;
        let held = held.ok_or(Error::NotFound)?;
        let (tenant, id) = held.split_once(' ').ok_or(Error::NotFound)?;
        let tenant: TenantId = tenant.parse().map_err(|_| Error::NotFound)?;
        let tunnel = self.inner.read_tunnel(&tenant, id).await?;
        // A stale claim (record renamed away or replaced) names nothing.
        if tunnel.name != name {
            return Err(Error::NotFound);
        }
        Ok(tunnel)
    }

    async fn list_tunnels(&self, tenant: &TenantId) -> Result<Vec<Tunnel>> {
        let ids = self
            .inner
            .members(format!("{}tunnels", self.inner.keys.tenant(tenant)))
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.inner.read_tunnel(tenant, &id).await {
                Ok(t) => out.push(t),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn update_tunnel(&self, tunnel: &Tunnel) -> Result<()> {
        let inner = &self.inner;
        let current = inner
            .read_tunnel(&tunnel.tenant, tunnel.id.as_str())
            .await?;
        let renamed = current.name != tunnel.name;
        if renamed {
            inner.claim_name(&tunnel.name, &holder(tunnel)).await?;
        }
        let put = inner.put_tunnel(tunnel, "update").await;
        if put.is_ok() {
            inner.config_changed().await;
        }
        match put {
            Ok(_) if renamed => inner.release_name(&current.name, &holder(tunnel)).await,
            Ok(_) => Ok(()),
            Err(err) => {
                if renamed {
                    inner.release_name(&tunnel.name, &holder(tunnel)).await?;
                }
                Err(err)
            }
        }
    }

    async fn delete_tunnel(&self, tenant: &TenantId, id: &TunnelId) -> Result<()> {
        let inner = &self.inner;
        let current = inner.read_tunnel(tenant, id.as_str()).await?;
        let mut con = inner.con()?;
        let prefix = inner.keys.tenant(tenant);
        redis::pipe()
            .atomic()
            .del(inner.tunnel_key(tenant, id.as_str()))
            .srem(format!("{prefix}tunnels"), id.as_str())
            .query_async::<()>(&mut con)
            .await
            .map_err(unavailable)?;
        inner.config_changed().await;
        inner.release_name(&current.name, &holder(&current)).await
    }
}
