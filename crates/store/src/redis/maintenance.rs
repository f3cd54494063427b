//! Key maintenance on Redis, for `hookrelay keys --store redis://...`:
//! which keys the sealed records use, and re-encryption of old records
//! under the active key, beside running nodes.
//!
//! Redis keeps no key id column: a sealed value names its key in its first
//! bytes (`crypto::key_id_of`), so counting reads only those
//! ([`crypto::OVERHEAD`] bytes per value, cut inside Redis). The records:
//! per tenant, bucket auth (`b:<id>` `auth`), input secrets (`i:<id>`
//! `sec`), function configs (`fn:<id>` `cfg`), tunnel auth (`tun:<id>`
//! `auth`), event payloads (`e:<id>` `p`, listed by the `ev` index); and
//! the cluster's canary (`{ns}:canary`), which must move too or a node
//! holding only the new key could not start.
//!
//! A rewrite is a compare-and-set in Lua: the value is replaced only if its
//! first bytes (format, key id and the random nonce: unique per sealing)
//! are still the ones re-encrypted, so a record a node changed meanwhile is
//! left alone, and one deleted meanwhile is not brought back. Each batch
//! stands alone; an interrupted run starts again where records are still
//! old. Settings and the canary go in the first batch, then events tenant
//! by tenant, `batch` at a time.

use std::collections::BTreeMap;

use crypto::{KeyId, Keyring};
use model::TenantId;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::codec::unavailable;
use super::keys::Keys;
use super::RedisOptions;
use crate::maintenance::{KeyUsage, ReencryptStep};
use crate::sealed::{self, Table};
use crate::Result;

/// The first `ARGV[2]` bytes of field `ARGV[1]` of each hash in `KEYS`
/// (one tenant's: one slot), `''` where there is none.
const HEADS: &str = r"
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HGET', k, ARGV[1])
  if v then out[i] = string.sub(v, 1, tonumber(ARGV[2])) else out[i] = '' end
end
return out
";

/// Sets field `ARGV[1]` of hash `KEYS[1]` to `ARGV[3]` if its value still
/// starts with `ARGV[2]`; 1 if it did.
const SWAP: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
";

/// The same for the string `KEYS[1]` (the canary).
const SWAP_STRING: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// How many bytes of a sealed value name it: format, key id, nonce and
/// the start of the ciphertext. Every sealed value is at least this long.
const HEAD: usize = crypto::OVERHEAD;

/// Key maintenance of one Redis namespace.
pub struct RedisKeyMaintenance {
    con: ConnectionManager,
    keys: Keys,
    crypto: Keyring,
    /// Tenants whose events are still to be looked at, and the last event
    /// id looked at in the first of them; `None` before the first batch.
    events: Option<(Vec<String>, Option<String>)>,
}

/// One sealed field: the hash, the field, the record's id (for its
/// associated data) and its kind.
struct Record {
    key: String,
    field: &'static str,
    id: String,
    table: Table,
}

impl RedisKeyMaintenance {
    /// Connects to the store at `url`, namespace `options.namespace`.
    pub async fn open(url: &str, crypto: Keyring, options: &RedisOptions) -> Result<Self> {
        let (_, con) = super::connect(url, options).await?;
        Ok(Self {
            con,
            keys: Keys::new(&options.namespace),
            crypto,
            events: None,
        })
    }

    async fn tenants(&mut self) -> Result<Vec<String>> {
        let mut tenants: Vec<String> = self
            .con
            .smembers(self.keys.tenants())
            .await
            .map_err(unavailable)?;
        tenants.sort();
        Ok(tenants)
    }

    async fn members(&mut self, key: String) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self.con.smembers(key).await.map_err(unavailable)?;
        ids.sort();
        Ok(ids)
    }

    /// The sealed settings of one tenant: bucket auth, input secrets,
    /// function configs, tunnel auth.
    async fn settings(&mut self, tenant: &str) -> Result<Vec<Record>> {
        let p = self.prefix(tenant);
        let mut out = Vec::new();
        for bucket in self.members(format!("{p}buckets")).await? {
            for input in self.members(format!("{p}b:{bucket}:ins")).await? {
                out.push(Record {
                    key: format!("{p}i:{input}"),
                    field: "sec",
                    id: input,
                    table: Table::Inputs,
                });
            }
            out.push(Record {
                key: format!("{p}b:{bucket}"),
                field: "auth",
                id: bucket,
                table: Table::Buckets,
            });
        }
        for id in self.members(format!("{p}functions")).await? {
            out.push(Record {
                key: format!("{p}fn:{id}"),
                field: "cfg",
                id,
                table: Table::Functions,
            });
        }
        for id in self.members(format!("{p}tunnels")).await? {
            out.push(Record {
                key: format!("{p}tun:{id}"),
                field: "auth",
                id,
                table: Table::Tunnels,
            });
        }
        Ok(out)
    }

    /// Up to `limit` events of `tenant` after `after`, oldest first.
    async fn events_after(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let p = self.prefix(tenant);
        let min = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let ids: Vec<String> = self
            .con
            .zrangebylex_limit(format!("{p}ev"), min, "+", 0, limit as isize)
            .await
            .map_err(unavailable)?;
        Ok(ids
            .into_iter()
            .map(|id| Record {
                key: format!("{p}e:{id}"),
                field: "p",
                id,
                table: Table::Events,
            })
            .collect())
    }

    fn prefix(&self, tenant: &str) -> String {
        // The tenant ids come from the store's own set; one that does not
        // parse has no records under a prefix we could name.
        match tenant.parse::<TenantId>() {
            Ok(t) => self.keys.tenant(&t),
            Err(_) => format!("\0{tenant}"),
        }
    }

    /// The first bytes of each record's value (`None` where it has none:
    /// an ephemeral event, a record deleted meanwhile). The records are one
    /// tenant's (one slot); one script call reads one field.
    async fn heads(&mut self, records: &[Record]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = vec![None; records.len()];
        let mut by_field: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            by_field.entry(r.field).or_default().push(i);
        }
        let heads_script = redis::Script::new(HEADS);
        for (field, indexes) in by_field {
            for chunk in indexes.chunks(500) {
                let mut script = heads_script.prepare_invoke();
                for &i in chunk {
                    script.key(&records[i].key);
                }
                let heads: Vec<Vec<u8>> = script
                    .arg(field)
                    .arg(HEAD)
                    .invoke_async(&mut self.con)
                    .await
                    .map_err(unavailable)?;
                for (&i, head) in chunk.iter().zip(heads) {
                    out[i] = (!head.is_empty()).then_some(head);
                }
            }
        }
        Ok(out)
    }

    async fn canary_head(&mut self) -> Result<Option<Vec<u8>>> {
        let head: Option<Vec<u8>> = redis::cmd("GETRANGE")
            .arg(self.keys.canary())
            .arg(0)
            .arg(HEAD - 1)
            .query_async(&mut self.con)
            .await
            .map_err(unavailable)?;
        Ok(head.filter(|h| !h.is_empty()))
    }

    /// The keys the running nodes seal with.
    async fn node_keys(&mut self) -> Result<Vec<KeyId>> {
        let nodes: BTreeMap<String, String> = self
            .con
            .hgetall(self.keys.node_keys())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for (node, key) in nodes {
            let alive: bool = self
                .con
                .exists(self.keys.node(&node))
                .await
                .map_err(unavailable)?;
            if let (true, Ok(id)) = (alive, key.parse()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Counts the records under each key.
    pub async fn usage(&mut self) -> Result<KeyUsage> {
        let mut usage = KeyUsage::default();
        for tenant in self.tenants().await? {
            let mut records = self.settings(&tenant).await?;
            let mut after: Option<String> = None;
            loop {
                let events = self.events_after(&tenant, after.as_deref(), 1000).await?;
                let Some(last) = events.last() else { break };
                after = Some(last.id.clone());
                records.extend(events);
                // Counted a page at a time: heads only, never payloads.
                let heads = self.heads(&records).await?;
                tally(&mut usage, &records, &heads);
                records.clear();
            }
            let heads = self.heads(&records).await?;
            tally(&mut usage, &records, &heads);
        }
        usage.canary = self
            .canary_head()
            .await?
            .and_then(|h| crypto::key_id_of(&h).ok());
        let nodes = self.node_keys().await?;
        let active = self.crypto.active();
        usage.server_active = nodes
            .iter()
            .copied()
            .find(|id| *id != active)
            .or_else(|| nodes.first().copied());
        Ok(usage)
    }

    /// Re-encrypts up to `batch` records not under the active key. Call
    /// until `done`.
    pub async fn reencrypt_step(&mut self, batch: usize) -> Result<ReencryptStep> {
        let mut step = ReencryptStep::default();
        let records = match self.events.take() {
            None => {
                let tenants = self.tenants().await?;
                for tenant in &tenants {
                    let records = self.settings(tenant).await?;
                    self.rewrite(&records, &mut step).await?;
                }
                self.canary(&mut step).await?;
                step.done = tenants.is_empty();
                self.events = Some((tenants, None));
                return Ok(step);
            }
            Some((mut tenants, after)) => {
                let Some(tenant) = tenants.first().cloned() else {
                    step.done = true;
                    self.events = Some((tenants, None));
                    return Ok(step);
                };
                let records = self
                    .events_after(&tenant, after.as_deref(), batch.max(1))
                    .await?;
                let after = match records.last() {
                    Some(last) if records.len() == batch.max(1) => Some(last.id.clone()),
                    _ => {
                        tenants.remove(0);
                        None
                    }
                };
                step.done = tenants.is_empty();
                self.events = Some((tenants, after));
                records
            }
        };
        self.rewrite(&records, &mut step).await?;
        Ok(step)
    }

    /// Re-seals those of one tenant's `records` not under the active key.
    async fn rewrite(&mut self, records: &[Record], step: &mut ReencryptStep) -> Result<()> {
        let heads = self.heads(records).await?;
        for (record, head) in records.iter().zip(heads) {
            let Some(head) = head else { continue };
            if crypto::key_id_of(&head).ok() == Some(self.crypto.active()) {
                continue;
            }
            let value: Vec<u8> = self
                .con
                .hget(&record.key, record.field)
                .await
                .map_err(unavailable)?;
            // An event whose id the append script re-minted was sealed
            // under the id it keeps in `a`.
            let sealed_as: Option<String> = match record.table {
                Table::Events => self.con.hget(&record.key, "a").await.map_err(unavailable)?,
                _ => None,
            };
            let aad = sealed::aad_of(record.table, sealed_as.as_deref().unwrap_or(&record.id));
            match sealed::reseal(&self.crypto, &aad, &value) {
                Ok(Some(resealed)) => {
                    let swapped: i64 = redis::Script::new(SWAP)
                        .key(&record.key)
                        .arg(record.field)
                        .arg(&value[..HEAD.min(value.len())])
                        .arg(resealed)
                        .invoke_async(&mut self.con)
                        .await
                        .map_err(unavailable)?;
                    step.rewritten += usize::from(swapped == 1);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(record = %record.id, %err, "cannot re-encrypt a record; left as it is");
                    step.unreadable += 1;
                }
            }
        }
        Ok(())
    }

    /// Re-seals the canary under the active key.
    async fn canary(&mut self, step: &mut ReencryptStep) -> Result<()> {
        let key = self.keys.canary();
        let value: Option<Vec<u8>> = self.con.get(&key).await.map_err(unavailable)?;
        let Some(value) = value else { return Ok(()) };
        match sealed::reseal(&self.crypto, key.as_bytes(), &value) {
            Ok(Some(resealed)) => {
                let swapped: i64 = redis::Script::new(SWAP_STRING)
                    .key(&key)
                    .arg(&value[..HEAD.min(value.len())])
                    .arg(resealed)
                    .invoke_async(&mut self.con)
                    .await
                    .map_err(unavailable)?;
                step.rewritten += usize::from(swapped == 1);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(%err, "cannot re-encrypt the cluster's key canary; left as it is");
                step.unreadable += 1;
            }
        }
        Ok(())
    }
}

fn tally(usage: &mut KeyUsage, records: &[Record], heads: &[Option<Vec<u8>>]) {
    for (record, head) in records.iter().zip(heads) {
        let Some(id) = head.as_deref().and_then(|h| crypto::key_id_of(h).ok()) else {
            continue;
        };
        let map = match record.table {
            Table::Events => &mut usage.events,
            Table::Inputs => &mut usage.inputs,
            Table::Buckets => &mut usage.buckets,
            Table::Functions => &mut usage.functions,
            Table::Tunnels => &mut usage.tunnels,
        };
        *map.entry(id).or_default() += 1;
    }
}
