//! [`Buckets`] on Redis: buckets, inputs and outputs as hashes under the tenant's prefix
//! (`b:<id>`, `i:<id>`, `o:<id>`; tenants and tokens are in `tenants`), with the
//! name indexes `bname` and `iname` (hashes name → id, claimed with
//! HSETNX inside `lua/objects.lua`, so uniqueness is atomic) and the member
//! sets `buckets`, `b:<id>:ins`, `b:<id>:outs`. Each record keeps its
//! model JSON in `json`; secrets are sealed apart (`auth`, `sec`); the
//! fields a script needs (name, bucket, internal flag) sit beside.
//!
//! Two lookups cannot carry a tenant (ingest knows an input id, a bearer
//! token its key): the global keys `input:<id>` and `token:<key>` hold the
//! owning tenant, written before the tenant's record and removed after it,
//! so a reader that finds a stale entry finds no record and says NotFound.

use async_trait::async_trait;
use crypto::Keyring;
use model::{Bucket, BucketAuth, BucketId, Input, InputId, Output, OutputId, Secret, TenantId};
use redis::AsyncCommands;

use super::codec::{field, from_json, text_field, to_json, unavailable, Fields};
use super::{Inner, RedisStore};
use crate::{sealed, Buckets, Error, Result};

impl Inner {
    /// Runs one branch of `lua/objects.lua` in `tenant`. Every write of an
    /// object goes through here (a tenant's delete aside), so this is where
    /// a successful one ticks the configuration feed, here and on the other
    /// nodes ([`Inner::config_changed`]).
    pub(super) async fn object_op(&self, tenant: &TenantId, args: &[&[u8]]) -> Result<()> {
        let mut con = self.con()?;
        let mut call = self.scripts.objects.key(self.keys.tenant(tenant));
        for a in args {
            call.arg(*a);
        }
        let answer: String = call.invoke_async(&mut con).await.map_err(unavailable)?;
        match answer.as_str() {
            "ok" => {
                self.config_changed().await;
                Ok(())
            }
            "nf" => Err(Error::NotFound),
            "conflict:name" => Err(Error::Conflict("name")),
            "conflict:key" => Err(Error::Conflict("key")),
            "conflict:id" => Err(Error::Conflict("id")),
            other => Err(Error::Corrupt(format!("objects script answered {other:?}"))),
        }
    }

    pub(super) async fn hash(&self, key: String) -> Result<Option<Fields>> {
        let mut con = self.con()?;
        let f: Fields = con.hgetall(key).await.map_err(unavailable)?;
        Ok((!f.is_empty()).then_some(f))
    }

    pub(super) async fn members(&self, key: String) -> Result<Vec<String>> {
        let mut con = self.con()?;
        con.smembers(key).await.map_err(unavailable)
    }

    // ---- buckets ----

    fn bucket_record(&self, b: &Bucket) -> Result<(String, Vec<u8>)> {
        let (auth, _) =
            sealed::seal_bucket_auth(&self.crypto, b.id.as_str(), &to_json(&b.auth.sealable())?)?;
        let mut plain = b.clone();
        plain.auth = BucketAuth::None;
        Ok((to_json(&plain)?, auth))
    }

    pub(super) async fn put_bucket(&self, b: &Bucket, op: &str) -> Result<()> {
        let (json, auth) = self.bucket_record(b)?;
        let args: [&[u8]; 6] = [
            op.as_bytes(),
            b.id.as_str().as_bytes(),
            b.name.as_bytes(),
            json.as_bytes(),
            &auth,
            if b.ephemeral { b"1" } else { b"0" },
        ];
        self.object_op(&b.tenant, &args).await
    }

    // ---- inputs ----

    fn input_record(&self, i: &Input) -> Result<(String, Vec<u8>)> {
        let secrets: Vec<&str> = i.secrets.iter().map(Secret::expose).collect();
        let id = i.id.to_string();
        let (sec, _) = sealed::seal_secrets(&self.crypto, &id, &to_json(&secrets)?)?;
        Ok((to_json(i)?, sec))
    }

    /// Deletes a global owner entry if it still names `tenant`.
    pub(super) async fn drop_owner_if(&self, key: String, tenant: &TenantId) -> Result<()> {
        let mut con = self.con()?;
        let owner: Option<String> = con.get(&key).await.map_err(unavailable)?;
        if owner.as_deref() == Some(tenant.as_str()) {
            let _: () = con.del(&key).await.map_err(unavailable)?;
        }
        Ok(())
    }

    // ---- outputs ----

    pub(super) async fn put_output(&self, o: &Output, create: bool) -> Result<()> {
        if !o.internal {
            let mut con = self.con()?;
            let _: () = con
                .sadd(self.keys.public_tenants(), o.tenant.as_str())
                .await
                .map_err(unavailable)?;
        }
        let json = to_json(o)?;
        let internal: &[u8] = if o.internal { b"1" } else { b"0" };
        let id = o.id.as_str().as_bytes();
        if create {
            let created = o.created_at.to_string();
            let args: [&[u8]; 6] = [
                b"output.create",
                id,
                o.bucket.as_str().as_bytes(),
                json.as_bytes(),
                internal,
                created.as_bytes(),
            ];
            self.object_op(&o.tenant, &args).await
        } else {
            let args: [&[u8]; 4] = [b"output.update", id, json.as_bytes(), internal];
            self.object_op(&o.tenant, &args).await
        }
    }
}

fn decode_bucket(f: &Fields, id: &str, keys: &Keyring) -> Result<Bucket> {
    let mut b: Bucket = from_json(field(f, "json", "bucket")?, "bucket")?;
    let auth = sealed::open_bucket_auth(keys, id, field(f, "auth", "bucket")?)?;
    b.auth = from_json(&auth, "bucket auth")?;
    Ok(b)
}

/// The bucket and creation time of an input are fixed at creation.
fn decode_input(f: &Fields, id: &str, keys: &Keyring) -> Result<Input> {
    let what = "input";
    let mut i: Input = from_json(field(f, "json", what)?, what)?;
    let secrets = sealed::open_secrets(keys, id, field(f, "sec", what)?)?;
    i.secrets = secrets.into_iter().map(Secret::new).collect();
    i.bucket = text_field(f, "bucket", what)?
        .parse()
        .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
    i.created_at = super::codec::int_field(f, "created", what)?;
    Ok(i)
}

/// The bucket and creation time of an output are fixed at creation.
pub(super) fn decode_output(f: &Fields) -> Result<Output> {
    let what = "output";
    let mut o: Output = from_json(field(f, "json", what)?, what)?;
    o.bucket = text_field(f, "bucket", what)?
        .parse()
        .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
    o.created_at = super::codec::int_field(f, "created", what)?;
    Ok(o)
}

#[async_trait]
impl Buckets for RedisStore {
    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.inner.put_bucket(bucket, "bucket.create").await
    }

    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket> {
        let key = format!("{}b:{}", self.inner.keys.tenant(tenant), id.as_str());
        let f = self.inner.hash(key).await?.ok_or(Error::NotFound)?;
        decode_bucket(&f, id.as_str(), &self.inner.crypto)
    }

    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket> {
        let mut con = self.inner.con()?;
        let id: Option<String> = con
            .hget(format!("{}bname", self.inner.keys.tenant(tenant)), name)
            .await
            .map_err(unavailable)?;
        let id: BucketId = id
            .ok_or(Error::NotFound)?
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        self.bucket(tenant, &id).await
    }

    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>> {
        let ids = self
            .inner
            .members(format!("{}buckets", self.inner.keys.tenant(tenant)))
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = id.parse::<BucketId>() else {
                continue;
            };
            match self.bucket(tenant, &id).await {
                Ok(b) => out.push(b),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn update_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.inner.put_bucket(bucket, "bucket.update").await
    }

    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()> {
        let prefix = self.inner.keys.tenant(tenant);
        let mut con = self.inner.con()?;
        let exists: bool = con
            .exists(format!("{prefix}b:{}", id.as_str()))
            .await
            .map_err(unavailable)?;
        if !exists {
            return Err(Error::NotFound);
        }
        let inputs = self
            .inner
            .members(format!("{prefix}b:{}:ins", id.as_str()))
            .await?;
        self.inner.purge_channels(tenant, id.as_str()).await?;
        while self
            .inner
            .purge_bucket(tenant, id.as_str(), "+", super::events::DELETE_BATCH)
            .await?
            > 0
        {}
        self.inner
            .object_op(tenant, &[b"bucket.delete", id.as_str().as_bytes()])
            .await?;
        for input in inputs {
            self.inner
                .drop_owner_if(self.inner.keys.input_owner(&input), tenant)
                .await?;
        }
        Ok(())
    }

    async fn create_input(&self, i: &Input) -> Result<()> {
        let (json, sec) = self.inner.input_record(i)?;
        let mut con = self.inner.con()?;
        let id = i.id.to_string();
        let _: () = con
            .set(self.inner.keys.input_owner(&id), i.tenant.as_str())
            .await
            .map_err(unavailable)?;
        let created = i.created_at.to_string();
        let name = i.name.as_deref().unwrap_or_default();
        let args: [&[u8]; 7] = [
            b"input.create",
            id.as_bytes(),
            i.bucket.as_str().as_bytes(),
            name.as_bytes(),
            json.as_bytes(),
            &sec,
            created.as_bytes(),
        ];
        let done = self.inner.object_op(&i.tenant, &args).await;
        if matches!(done, Err(Error::NotFound)) {
            self.inner
                .drop_owner_if(self.inner.keys.input_owner(&id), &i.tenant)
                .await?;
        }
        done
    }

    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input> {
        let id = id.to_string();
        let key = format!("{}i:{id}", self.inner.keys.tenant(tenant));
        let f = self.inner.hash(key).await?.ok_or(Error::NotFound)?;
        decode_input(&f, &id, &self.inner.crypto)
    }

    async fn input_by_id(&self, id: &InputId) -> Result<Input> {
        let mut con = self.inner.con()?;
        let owner: Option<String> = con
            .get(self.inner.keys.input_owner(&id.to_string()))
            .await
            .map_err(unavailable)?;
        let tenant: TenantId = owner
            .ok_or(Error::NotFound)?
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        self.input(&tenant, id).await
    }

    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input> {
        let mut con = self.inner.con()?;
        let id: Option<String> = con
            .hget(format!("{}iname", self.inner.keys.tenant(tenant)), name)
            .await
            .map_err(unavailable)?;
        let id: InputId = id
            .ok_or(Error::NotFound)?
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?;
        self.input(tenant, &id).await
    }

    async fn list_inputs(&self, t: &TenantId, b: &BucketId) -> Result<Vec<Input>> {
        let ids = self
            .inner
            .members(format!("{}b:{}:ins", self.inner.keys.tenant(t), b.as_str()))
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = id.parse::<InputId>() else {
                continue;
            };
            match self.input(t, &id).await {
                Ok(i) => out.push(i),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|a| (a.created_at, a.id));
        Ok(out)
    }

    async fn update_input(&self, i: &Input) -> Result<()> {
        let (json, sec) = self.inner.input_record(i)?;
        let id = i.id.to_string();
        let name = i.name.as_deref().unwrap_or_default();
        let args: [&[u8]; 5] = [
            b"input.update",
            id.as_bytes(),
            name.as_bytes(),
            json.as_bytes(),
            &sec,
        ];
        self.inner.object_op(&i.tenant, &args).await
    }

    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()> {
        let id = id.to_string();
        self.inner
            .object_op(tenant, &[b"input.delete", id.as_bytes()])
            .await?;
        self.inner
            .drop_owner_if(self.inner.keys.input_owner(&id), tenant)
            .await
    }

    async fn create_output(&self, output: &Output) -> Result<()> {
        self.inner.put_output(output, true).await
    }

    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output> {
        let key = format!("{}o:{}", self.inner.keys.tenant(tenant), id.as_str());
        let f = self.inner.hash(key).await?.ok_or(Error::NotFound)?;
        decode_output(&f)
    }

    async fn list_outputs(&self, t: &TenantId, b: &BucketId) -> Result<Vec<Output>> {
        let mut con = self.inner.con()?;
        let ids: Vec<String> = con
            .hkeys(format!(
                "{}b:{}:outs",
                self.inner.keys.tenant(t),
                b.as_str()
            ))
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = id.parse::<OutputId>() else {
                continue;
            };
            match self.output(t, &id).await {
                Ok(o) => out.push(o),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn update_output(&self, output: &Output) -> Result<()> {
        self.inner.put_output(output, false).await
    }

    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()> {
        self.inner
            .object_op(tenant, &[b"output.delete", id.as_str().as_bytes()])
            .await
    }
}
