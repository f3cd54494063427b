//! [`Tenants`] on Redis: tenants and tokens, the objects that exist before
//! any bucket: the tenant hash `t` (model JSON, poll secret hash), and per
//! token `k:<key>` (model JSON at creation, then its description, buckets
//! and secret hash in their own fields: an update replaces those alone, so
//! scope and mode stay as created). Token keys are unique across tenants through the
//! global `token:<key>` (`SET NX`), admin tokens are listed in `admins`.
//! Deleting a tenant unlinks every key under its prefix.

use async_trait::async_trait;
use model::{Secret, Tenant, TenantId, Token, TokenKey, TokenScope};
use redis::AsyncCommands;

use super::codec::{field, from_json, text_field, to_json, unavailable};
use super::{Inner, RedisStore};
use crate::{Error, Result, TenantRecord, Tenants};

impl Inner {
    // ---- tenants ----

    // ---- tokens ----

    pub(super) async fn token(&self, tenant: &TenantId, key: &str) -> Result<Token> {
        let k = format!("{}k:{key}", self.keys.tenant(tenant));
        let f = self.hash(k).await?.ok_or(Error::NotFound)?;
        let what = "token";
        let mut t: Token = from_json(field(&f, "json", what)?, what)?;
        t.description = text_field(&f, "desc", what)?;
        t.buckets = from_json(field(&f, "buckets", what)?, what)?;
        t.secret_hash = Secret::new(text_field(&f, "hash", what)?);
        Ok(t)
    }
}

#[async_trait]
impl Tenants for RedisStore {
    async fn create_tenant(&self, r: &TenantRecord) -> Result<()> {
        let json = to_json(&r.tenant)?;
        let poll = r.poll_secret_hash.as_deref().unwrap_or_default();
        let has = if r.poll_secret_hash.is_some() {
            "1"
        } else {
            "0"
        };
        let args: [&[u8]; 4] = [
            b"tenant.create",
            json.as_bytes(),
            has.as_bytes(),
            poll.as_bytes(),
        ];
        self.inner.object_op(&r.tenant.id, &args).await?;
        let mut con = self.inner.con()?;
        let _: () = con
            .sadd(self.inner.keys.tenants(), r.tenant.id.as_str())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        let key = format!("{}t", self.inner.keys.tenant(id));
        let f = self.inner.hash(key).await?.ok_or(Error::NotFound)?;
        let tenant: Tenant = from_json(field(&f, "json", "tenant")?, "tenant")?;
        let poll_secret_hash = f
            .contains_key("poll")
            .then(|| text_field(&f, "poll", "tenant"));
        Ok(TenantRecord {
            tenant,
            poll_secret_hash: poll_secret_hash.transpose()?,
        })
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let mut ids = self.inner.members(self.inner.keys.tenants()).await?;
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = id.parse::<TenantId>() else {
                continue;
            };
            match self.tenant(&id).await {
                Ok(r) => out.push(r.tenant),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn update_tenant(&self, t: &Tenant) -> Result<()> {
        let json = to_json(t)?;
        self.inner
            .object_op(&t.id, &[b"set", b"t", b"json", json.as_bytes()])
            .await
    }

    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()> {
        match hash {
            Some(h) => {
                self.inner
                    .object_op(id, &[b"set", b"t", b"poll", h.as_bytes()])
                    .await
            }
            None => self.inner.object_op(id, &[b"unset", b"t", b"poll"]).await,
        }
    }

    /// Deletes every key under the tenant's prefix (SCAN by pattern: a rare
    /// admin operation), then its entries in the global indexes.
    async fn delete_tenant(&self, tenant: &TenantId) -> Result<()> {
        let prefix = self.inner.keys.tenant(tenant);
        let mut con = self.inner.con()?;
        let exists: bool = con
            .exists(format!("{prefix}t"))
            .await
            .map_err(unavailable)?;
        if !exists {
            return Err(Error::NotFound);
        }
        let mut inputs = Vec::new();
        for bucket in self.inner.members(format!("{prefix}buckets")).await? {
            self.inner.purge_channels(tenant, &bucket).await?;
            inputs.extend(
                self.inner
                    .members(format!("{prefix}b:{bucket}:ins"))
                    .await?,
            );
        }
        let tokens = self.inner.members(format!("{prefix}tokens")).await?;
        let _: () = con
            .srem(self.inner.keys.tenants(), tenant.as_str())
            .await
            .map_err(unavailable)?;
        let pattern = self.inner.keys.tenant_pattern(tenant);
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(unavailable)?;
            if !found.is_empty() {
                let _: () = con.unlink(found).await.map_err(unavailable)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for input in inputs {
            self.inner
                .drop_owner_if(self.inner.keys.input_owner(&input), tenant)
                .await?;
        }
        for key in tokens {
            self.inner
                .drop_owner_if(self.inner.keys.token_owner(&key), tenant)
                .await?;
            let entry = format!("{}|{key}", tenant.as_str());
            let _: () = con
                .srem(self.inner.keys.admins(), entry)
                .await
                .map_err(unavailable)?;
        }
        let _: () = con
            .srem(self.inner.keys.public_tenants(), tenant.as_str())
            .await
            .map_err(unavailable)?;
        // The one object write that does not go through `object_op`.
        self.inner.config_changed().await;
        Ok(())
    }

    async fn create_token(&self, t: &Token) -> Result<()> {
        let mut con = self.inner.con()?;
        let owner = self.inner.keys.token_owner(t.key.as_str());
        let fresh: bool = redis::cmd("SET")
            .arg(&owner)
            .arg(t.tenant.as_str())
            .arg("NX")
            .query_async::<Option<String>>(&mut con)
            .await
            .map_err(unavailable)?
            .is_some();
        if !fresh {
            return Err(Error::Conflict("key"));
        }
        let (json, buckets) = (to_json(t)?, to_json(&t.buckets)?);
        let args: [&[u8]; 6] = [
            b"token.create",
            t.key.as_str().as_bytes(),
            json.as_bytes(),
            t.description.as_bytes(),
            buckets.as_bytes(),
            t.secret_hash.expose().as_bytes(),
        ];
        if let Err(e) = self.inner.object_op(&t.tenant, &args).await {
            let _: () = con.del(&owner).await.map_err(unavailable)?;
            return Err(e);
        }
        if t.scope == TokenScope::Admin {
            let entry = format!("{}|{}", t.tenant.as_str(), t.key.as_str());
            let _: () = con
                .sadd(self.inner.keys.admins(), entry)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn token_by_key(&self, key: &TokenKey) -> Result<Token> {
        let mut con = self.inner.con()?;
        let owner: Option<String> = con
            .get(self.inner.keys.token_owner(key.as_str()))
            .await
            .map_err(unavailable)?;
        let tenant: TenantId = owner
            .ok_or(Error::NotFound)?
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        self.inner.token(&tenant, key.as_str()).await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>> {
        let keys = self
            .inner
            .members(format!("{}tokens", self.inner.keys.tenant(tenant)))
            .await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.inner.token(tenant, &key).await {
                Ok(t) => out.push(t),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
        Ok(out)
    }

    async fn update_token(&self, t: &Token) -> Result<()> {
        let suffix = format!("k:{}", t.key.as_str());
        let buckets = to_json(&t.buckets)?;
        let args: [&[u8]; 6] = [
            b"set",
            suffix.as_bytes(),
            b"desc",
            t.description.as_bytes(),
            b"buckets",
            buckets.as_bytes(),
        ];
        self.inner.object_op(&t.tenant, &args).await
    }

    async fn rotate_token_secret(
        &self,
        tenant: &TenantId,
        key: &TokenKey,
        secret_hash: &str,
    ) -> Result<()> {
        let suffix = format!("k:{}", key.as_str());
        let args: [&[u8]; 4] = [b"set", suffix.as_bytes(), b"hash", secret_hash.as_bytes()];
        self.inner.object_op(tenant, &args).await
    }

    async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()> {
        self.inner
            .object_op(tenant, &[b"token.delete", key.as_str().as_bytes()])
            .await?;
        self.inner
            .drop_owner_if(self.inner.keys.token_owner(key.as_str()), tenant)
            .await?;
        let mut con = self.inner.con()?;
        let entry = format!("{}|{}", tenant.as_str(), key.as_str());
        let _: () = con
            .srem(self.inner.keys.admins(), entry)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn has_admin_token(&self) -> Result<bool> {
        let mut con = self.inner.con()?;
        let n: usize = con
            .scard(self.inner.keys.admins())
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }
}
