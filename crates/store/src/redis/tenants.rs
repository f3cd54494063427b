//! Tenants and tokens, the objects that exist before any bucket: the
//! tenant hash `t` (model JSON, poll secret hash), and per token `k:<key>`
//! (model JSON at creation, then its description, buckets and secret hash
//! in their own fields: an update replaces those alone, so scope and mode
//! stay as created). Token keys are unique across tenants through the
//! global `token:<key>` (`SET NX`), admin tokens are listed in `admins`.

use model::{Secret, Tenant, TenantId, Token, TokenKey, TokenScope};
use redis::AsyncCommands;

use super::codec::{field, from_json, text_field, to_json, unavailable};
use super::Inner;
use crate::{Error, Result, TenantRecord};

impl Inner {
    // ---- tenants ----

    pub(super) async fn create_tenant(&self, r: &TenantRecord) -> Result<()> {
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
        self.object_op(&r.tenant.id, &args).await?;
        let mut con = self.con()?;
        let _: () = con
            .sadd(self.keys.tenants(), r.tenant.id.as_str())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub(super) async fn tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        let key = format!("{}t", self.keys.tenant(id));
        let f = self.hash(key).await?.ok_or(Error::NotFound)?;
        let tenant: Tenant = from_json(field(&f, "json", "tenant")?, "tenant")?;
        let poll_secret_hash = f
            .contains_key("poll")
            .then(|| text_field(&f, "poll", "tenant"));
        Ok(TenantRecord {
            tenant,
            poll_secret_hash: poll_secret_hash.transpose()?,
        })
    }

    pub(super) async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let mut ids = self.members(self.keys.tenants()).await?;
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

    pub(super) async fn update_tenant(&self, t: &Tenant) -> Result<()> {
        let json = to_json(t)?;
        self.object_op(&t.id, &[b"set", b"t", b"json", json.as_bytes()])
            .await
    }

    pub(super) async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()> {
        match hash {
            Some(h) => {
                self.object_op(id, &[b"set", b"t", b"poll", h.as_bytes()])
                    .await
            }
            None => self.object_op(id, &[b"unset", b"t", b"poll"]).await,
        }
    }

    // ---- tokens ----

    pub(super) async fn create_token(&self, t: &Token) -> Result<()> {
        let mut con = self.con()?;
        let owner = self.keys.token_owner(t.key.as_str());
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
        if let Err(e) = self.object_op(&t.tenant, &args).await {
            let _: () = con.del(&owner).await.map_err(unavailable)?;
            return Err(e);
        }
        if t.scope == TokenScope::Admin {
            let entry = format!("{}|{}", t.tenant.as_str(), t.key.as_str());
            let _: () = con
                .sadd(self.keys.admins(), entry)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

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

    pub(super) async fn token_by_key(&self, key: &TokenKey) -> Result<Token> {
        let mut con = self.con()?;
        let owner: Option<String> = con
            .get(self.keys.token_owner(key.as_str()))
            .await
            .map_err(unavailable)?;
        let tenant: TenantId = owner
            .ok_or(Error::NotFound)?
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        self.token(&tenant, key.as_str()).await
    }

    pub(super) async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>> {
        let keys = self
            .members(format!("{}tokens", self.keys.tenant(tenant)))
            .await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.token(tenant, &key).await {
                Ok(t) => out.push(t),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
        Ok(out)
    }

    pub(super) async fn update_token(&self, t: &Token) -> Result<()> {
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
        self.object_op(&t.tenant, &args).await
    }

    pub(super) async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()> {
        self.object_op(tenant, &[b"token.delete", key.as_str().as_bytes()])
            .await?;
        self.drop_owner_if(self.keys.token_owner(key.as_str()), tenant)
            .await?;
        let mut con = self.con()?;
        let entry = format!("{}|{}", tenant.as_str(), key.as_str());
        let _: () = con
            .srem(self.keys.admins(), entry)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub(super) async fn has_admin_token(&self) -> Result<bool> {
        let mut con = self.con()?;
        let n: usize = con.scard(self.keys.admins()).await.map_err(unavailable)?;
        Ok(n > 0)
    }
}
