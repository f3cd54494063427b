//! The [`Store`] impl of [`RedisStore`]: it only routes each call to the
//! module that does it (see the layout in `mod.rs`).

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use model::{
    Attempt, Bucket, BucketId, Delivery, Event, EventId, Input, InputId, NewEvent, Output,
    OutputId, RateLimit, Tenant, TenantId, Token, TokenKey,
};
use tokio::sync::{broadcast, watch};

use super::codec::unavailable;
use super::RedisStore;
use crate::{
    Appended, DeliveryKey, DueBatch, EventQuery, RateDecision, Result, Settle, Signal, Store,
    TenantRecord,
};

/// How long `close` waits for queued appends.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[async_trait]
impl Store for RedisStore {
    async fn create_tenant(&self, record: &TenantRecord) -> Result<()> {
        self.inner.create_tenant(record).await
    }

    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        self.inner.tenant(id).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.inner.list_tenants().await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.inner.update_tenant(tenant).await
    }

    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()> {
        self.inner.set_poll_secret(id, hash).await
    }

    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        self.inner.delete_tenant(id).await
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.inner.put_bucket(bucket, "bucket.create").await
    }

    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket> {
        self.inner.bucket(tenant, id).await
    }

    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket> {
        self.inner.bucket_by_name(tenant, name).await
    }

    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>> {
        self.inner.list_buckets(tenant).await
    }

    async fn update_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.inner.put_bucket(bucket, "bucket.update").await
    }

    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()> {
        self.inner.delete_bucket(tenant, id).await
    }

    async fn create_input(&self, input: &Input) -> Result<()> {
        self.inner.create_input(input).await
    }

    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input> {
        self.inner.input(tenant, id).await
    }

    async fn input_by_id(&self, id: &InputId) -> Result<Input> {
        self.inner.input_by_id(id).await
    }

    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input> {
        self.inner.input_by_name(tenant, name).await
    }

    async fn list_inputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Input>> {
        self.inner.list_inputs(tenant, bucket).await
    }

    async fn update_input(&self, input: &Input) -> Result<()> {
        self.inner.update_input(input).await
    }

    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()> {
        self.inner.delete_input(tenant, id).await
    }

    async fn create_output(&self, output: &Output) -> Result<()> {
        self.inner.put_output(output, true).await
    }

    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output> {
        self.inner.output(tenant, id).await
    }

    async fn list_outputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Output>> {
        self.inner.list_outputs(tenant, bucket).await
    }

    async fn update_output(&self, output: &Output) -> Result<()> {
        self.inner.put_output(output, false).await
    }

    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()> {
        self.inner
            .object_op(tenant, &[b"output.delete", id.as_str().as_bytes()])
            .await
    }

    async fn create_token(&self, token: &Token) -> Result<()> {
        self.inner.create_token(token).await
    }

    async fn token_by_key(&self, key: &TokenKey) -> Result<Token> {
        self.inner.token_by_key(key).await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>> {
        self.inner.list_tokens(tenant).await
    }

    async fn update_token(&self, token: &Token) -> Result<()> {
        self.inner.update_token(token).await
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
        self.inner.delete_token(tenant, key).await
    }

    async fn has_admin_token(&self) -> Result<bool> {
        self.inner.has_admin_token().await
    }

    async fn append(&self, event: NewEvent) -> Result<Appended> {
        self.inner.append(event).await
    }

    async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        self.inner
            .delivery_seen(tenant, input, delivery_id, now_ms)
            .await
    }

    async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        self.inner.event(tenant, id).await
    }

    async fn events(&self, tenant: &TenantId, query: &EventQuery) -> Result<Vec<Event>> {
        self.inner.events(tenant, query).await
    }

    fn visible_before(&self) -> i64 {
        self.inner.clock.visible_before()
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize> {
        self.inner.reset_deliveries(tenant, event, output).await
    }

    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
    ) -> Result<()> {
        self.inner
            .register_group(tenant, bucket, group, catchup_from_ms)
            .await
    }

    async fn expire_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        before_ms: i64,
    ) -> Result<usize> {
        self.inner
            .expire_deliveries(tenant, bucket, group, before_ms)
            .await
    }

    async fn due_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: Option<&str>,
        now_ms: i64,
        limit: usize,
    ) -> Result<DueBatch> {
        self.inner
            .due_deliveries(tenant, bucket, group, now_ms, limit)
            .await
    }

    async fn due_public_deliveries(&self, now_ms: i64, limit: usize) -> Result<DueBatch> {
        self.inner.due_public_deliveries(now_ms, limit).await
    }

    async fn mark_in_flight(&self, keys: &[DeliveryKey]) -> Result<()> {
        self.inner.mark_in_flight(keys).await
    }

    async fn settle(
        &self,
        key: &DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
    ) -> Result<()> {
        self.inner.settle(key, attempt, next).await
    }

    fn shared_dispatch(&self) -> bool {
        true
    }

    async fn broadcast(&self, signal: Signal) -> Result<()> {
        self.inner.broadcast(signal).await
    }

    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        Some(self.inner.signals.subscribe())
    }

    async fn announce_agent(
        &self,
        tenant: &TenantId,
        agent_id: &str,
        info: &serde_json::Value,
    ) -> Result<()> {
        self.inner.announce_agent(tenant, agent_id, info).await
    }

    async fn withdraw_agent(&self, tenant: &TenantId, agent_id: &str) -> Result<()> {
        self.inner.withdraw_agent(tenant, agent_id).await
    }

    async fn cluster_agents(&self, tenant: &TenantId) -> Result<Option<Vec<serde_json::Value>>> {
        self.inner.cluster_agents(tenant).await.map(Some)
    }

    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision> {
        let mut con = self.inner.con()?;
        let window_ms = i64::from(limit.window_seconds.max(1)) * 1000;
        let wait: i64 = self
            .inner
            .scripts
            .rate_limit
            .key(self.inner.keys.rate(key))
            .arg(limit.requests)
            .arg(window_ms)
            .arg(now_ms)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(if wait <= 0 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after_secs: u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1),
            }
        })
    }

    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize> {
        // Dedup entries expire by their own TTL.
        self.inner.purge_expired(now_ms, batch).await
    }

    fn pending_writes(&self) -> usize {
        self.inner.queued.load(Ordering::SeqCst)
    }

    async fn ping(&self) -> Result<()> {
        let mut con = self.inner.con()?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Refuses new calls, finishes the queued appends (within
    /// five seconds), stops the tasks, gives this node's claims back and
    /// removes its liveness key.
    async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.drain(CLOSE_GRACE).await;
        self.stop_tasks();
        let inner = &self.inner;
        match inner.release_node(&inner.node, None).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "claims given back at close"),
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "could not give claims back at close"),
        }
        let mut con = inner.conn.clone();
        let gone = redis::pipe()
            .cmd("DEL")
            .arg(inner.keys.node(&inner.node))
            .cmd("SREM")
            .arg(inner.keys.nodes())
            .arg(&inner.node)
            .query_async::<()>(&mut con)
            .await;
        if let Err(err) = gone {
            tracing::warn!(%err, "could not remove this node's liveness key");
        }
    }
}
