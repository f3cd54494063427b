//! Appends: one writer task per store batches concurrent appends (group
//! commit) into one pipeline per round trip, with one `lua/append.lua`
//! call per tenant and up to [`CALL_EVENTS`] events, and the commit tick
//! for the other nodes at its end.
//!
//! Ids: the node proposes each event's id (a ULID at its estimate of Redis
//! time, above the last id it has seen for the tenant) and seals the
//! payload under it (the id is the payload's associated data). The script
//! commits the event under the proposed id when that id is above the
//! tenant's last committed id (`last`) and not older than Redis `TIME`
//! minus [`SKEW_MS`]; otherwise it mints the id itself, at Redis time and
//! above `last`, and keeps the proposed id in the event's field `a`, which
//! is what its payload opens with. So no append is refused or retried for
//! its order or its age, whatever the number of nodes: ids increase
//! strictly in commit order per tenant, and an event committed at Redis
//! time `t` has `receivedAt >= t - SKEW_MS` (a re-minted one `>= t`): what
//! `visible_before` builds on (`cluster::Clock`). That covers the event
//! whose sealing and sending take longer than [`SKEW_MS`] (a 900 KB body
//! in a debug build on a loaded machine took ~0.7 s): it is re-minted at
//! its commit, not refused.
//!
//! Within one pipeline a tenant's events are proposed in pipeline order,
//! and Redis runs a connection's commands in order, so a node alone never
//! has its proposals re-minted; only another node's commit (or a slow
//! seal) can make the script mint.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use model::{EventId, NewEvent, TenantId};
use redis::Value;
use tokio::sync::{mpsc, oneshot};
use ulid::Ulid;

use super::codec::{self, to_json, EventMeta};
use super::keys::MAX_ULID_MS;
use super::Inner;
use crate::{sealed, Appended, Error, Result};

/// How far an id's time may lag Redis time at commit.
pub(super) const SKEW_MS: i64 = 500;
/// Appends taken into one pipeline at most.
const MAX_BATCH: usize = 256;
/// Events in one script call at most: a call runs atomically, so this
/// bounds how long one call holds Redis.
const CALL_EVENTS: usize = 64;
/// Sealed payload bytes in one script call at most (its first event
/// always goes in), for the same reason.
const CALL_BYTES: usize = 1 << 20;
/// Appends waiting for the writer at most (then callers wait).
pub(super) const QUEUE: usize = 4096;

/// One append waiting for the writer.
pub(super) struct Job {
    pub(super) event: NewEvent,
    /// The payload laid out (`sealed::event_plaintext`), not yet sealed.
    pub(super) plaintext: Option<Vec<u8>>,
    pub(super) reply: oneshot::Sender<Result<Appended>>,
}

/// One script call: a tenant's appends, in order.
struct Call {
    tenant: TenantId,
    replies: Vec<oneshot::Sender<Result<Appended>>>,
    payload_bytes: usize,
    cmd: redis::Cmd,
}

/// The writer task: runs until the store is dropped or closed.
pub(super) async fn writer(inner: Arc<Inner>, mut rx: mpsc::Receiver<Job>) {
    let mut last: HashMap<TenantId, Ulid> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let busy = inner.busy.lock().await;
        inner.queued.fetch_sub(batch.len(), Ordering::SeqCst);
        let calls = calls(&inner, &mut last, batch);
        if !calls.is_empty() && commit(&inner, &mut last, calls).await {
            inner.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        drop(busy);
    }
}

impl Inner {
    /// Waits (at most `within`) until every append queued so far is
    /// answered: `close` finishes queued writes.
    pub(super) async fn drain(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.queued.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let _ = tokio::time::timeout_at(deadline, self.busy.lock()).await;
    }
}

/// Proposes the next id of `tenant`: at Redis time, or just above the
/// last id seen when that is not older.
fn propose(last: &mut HashMap<TenantId, Ulid>, tenant: &TenantId, now_ms: i64) -> Ulid {
    let now = now_ms.clamp(0, MAX_ULID_MS) as u64;
    let next = match last.get(tenant) {
        Some(prev) if prev.timestamp_ms() >= now => prev
            .increment()
            .unwrap_or_else(|| Ulid::from_parts(prev.timestamp_ms() + 1, 0)),
        _ => Ulid::from_parts(now, Ulid::new().random()),
    };
    last.insert(tenant.clone(), next);
    next
}

/// The batch as script calls: grouped by tenant (in arrival order within
/// each), each call within [`CALL_EVENTS`] and [`CALL_BYTES`]. An append
/// whose payload cannot be sealed is answered here.
fn calls(inner: &Inner, last: &mut HashMap<TenantId, Ulid>, batch: Vec<Job>) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    // The call still open per tenant (an index into `calls`).
    let mut open: HashMap<TenantId, usize> = HashMap::new();
    for job in batch {
        let tenant = job.event.tenant.clone();
        let ulid = propose(last, &tenant, inner.clock.redis_now());
        let id = EventId::from_ulid(ulid);
        let payload = match &job.plaintext {
            Some(plain) => match sealed::seal_event(&inner.crypto, &id.to_string(), plain) {
                Ok(sealed) => Some(sealed.0),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                    continue;
                }
            },
            None => None,
        };
        let size = payload.as_ref().map_or(0, Vec::len);
        let at = match open.get(&tenant) {
            Some(&i)
                if calls[i].replies.len() < CALL_EVENTS
                    && calls[i].payload_bytes + size <= CALL_BYTES =>
            {
                i
            }
            _ => {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(inner.scripts.append.get_hash())
                    .arg(1)
                    .arg(inner.keys.tenant(&tenant))
                    .arg(SKEW_MS);
                calls.push(Call {
                    tenant: tenant.clone(),
                    replies: Vec::new(),
                    payload_bytes: 0,
                    cmd,
                });
                open.insert(tenant, calls.len() - 1);
                calls.len() - 1
            }
        };
        let call = &mut calls[at];
        match event_args(
            &mut call.cmd,
            &job.event,
            &id,
            ulid.timestamp_ms() as i64,
            payload,
        ) {
            Ok(()) => {
                call.payload_bytes += size;
                call.replies.push(job.reply);
            }
            // Only the metadata's JSON can fail, before any argument of
            // this event is added.
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    calls.retain(|c| !c.replies.is_empty());
    calls
}

/// Sends the calls in one pipeline (again, once, those that found the
/// script missing) and answers each append; whether any committed.
async fn commit(inner: &Inner, last: &mut HashMap<TenantId, Ulid>, calls: Vec<Call>) -> bool {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for call in &calls {
        pipe.add_command(call.cmd.clone());
    }
    // The other nodes' tick rides on the commit's own round trip; Redis
    // runs it after the calls. A tick for a batch of duplicates is only a
    // spurious wake-up.
    pipe.cmd("PUBLISH")
        .arg(inner.keys.bus())
        .arg(inner.bus_message(b"c"));
    inner.pipelines.fetch_add(1, Ordering::SeqCst);
    // The raw connection: appends queued before `close` still go through.
    let mut con = inner.conn.clone();
    let mut committed = false;
    let mut pending = calls;
    for attempt in 0..2 {
        let answers: Vec<redis::RedisResult<Value>> = match pipe.query_async(&mut con).await {
            Ok(answers) => answers,
            Err(e) => {
                // Which of them Redis ran is unknown: each caller hears
                // Unavailable, and a sender retry may store a copy.
                for call in pending {
                    for reply in call.replies {
                        let _ = reply.send(Err(codec::unavailable(e.clone())));
                    }
                }
                return committed;
            }
        };
        let mut missing = Vec::new();
        for (call, answer) in pending.into_iter().zip(answers) {
            match answer {
                Err(e)
                    if attempt == 0
                        && e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    missing.push(call);
                }
                Err(e) => {
                    for reply in call.replies {
                        let _ = reply.send(Err(codec::unavailable(e.clone())));
                    }
                }
                Ok(v) => committed |= settle(inner, last, call, v),
            }
        }
        if missing.is_empty() {
            break;
        }
        // Redis lost its script cache (a restart or SCRIPT FLUSH): none of
        // these calls ran, so sending them again stores nothing twice.
        let _ = inner
            .scripts
            .append
            .prepare_invoke()
            .load_async(&mut con)
            .await;
        pipe = redis::pipe();
        pipe.ignore_errors();
        for call in &missing {
            pipe.add_command(call.cmd.clone());
        }
        pending = missing;
    }
    committed
}

/// Answers the appends of one call from its script's answer; whether any
/// committed.
fn settle(inner: &Inner, last: &mut HashMap<TenantId, Ulid>, call: Call, answer: Value) -> bool {
    let (now, answers) = match decode(answer, call.replies.len()) {
        Ok(decoded) => decoded,
        Err(e) => {
            let e = e.to_string();
            for reply in call.replies {
                let _ = reply.send(Err(Error::Corrupt(e.clone())));
            }
            return false;
        }
    };
    inner.clock.observe(now);
    let mut committed = false;
    for (reply, outcome) in call.replies.into_iter().zip(answers) {
        if let Ok(appended) = &outcome {
            committed = true;
            let seen = last
                .entry(call.tenant.clone())
                .or_insert(appended.id.ulid());
            *seen = (*seen).max(appended.id.ulid());
        }
        let _ = reply.send(outcome);
    }
    committed
}

/// A script answer: Redis time and one outcome per event sent.
fn decode(v: Value, events: usize) -> Result<(i64, Vec<Result<Appended>>)> {
    let mut items = codec::array(v)?.into_iter();
    let now = codec::opt_ms(items.next().unwrap_or(Value::Nil))?
        .ok_or_else(|| Error::Corrupt("append answered no time".into()))?;
    let _remints = items.next();
    let outcomes = codec::array(items.next().unwrap_or(Value::Nil))?;
    if outcomes.len() != events {
        return Err(Error::Corrupt(format!(
            "append answered {} outcomes for {events} events",
            outcomes.len()
        )));
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| {
            let mut items = codec::array(o)?.into_iter();
            let tag = codec::text(items.next().unwrap_or(Value::Nil))?;
            match tag.as_str() {
                "ok" => {
                    let id = codec::text(items.next().unwrap_or(Value::Nil))?
                        .parse::<EventId>()
                        .map_err(|e| Error::Corrupt(format!("append answered an id: {e}")))?;
                    let received_at = id.ulid().timestamp_ms() as i64;
                    Ok(Appended { id, received_at })
                }
                "nf" => Err(Error::NotFound),
                "dup" => Err(Error::Duplicate),
                other => Err(Error::Corrupt(format!("append answered {other:?}"))),
            }
        })
        .collect();
    Ok((now, outcomes))
}

/// Adds one event's arguments to its call, in `lua/append.lua`'s order.
fn event_args(
    cmd: &mut redis::Cmd,
    e: &NewEvent,
    id: &EventId,
    ms: i64,
    payload: Option<Vec<u8>>,
) -> Result<()> {
    let meta = EventMeta {
        bucket: e.bucket.clone(),
        input: e.input,
        integration: e.integration,
        received_at: ms,
        method: e.method.clone(),
        path: e.path.clone(),
        size: e.body.size(),
        client_ip: e.client_ip.clone(),
        delivery_id: e.delivery_id.clone(),
        event_type: e.event_type.clone(),
        event_count: e.event_count,
        verified: e.verified,
        marks: e.marks.clone(),
    };
    let meta = to_json(&meta)?;
    let window = e.dedup_window_ms.clamp(0, MAX_DEDUP_WINDOW_MS);
    cmd.arg(id.to_string())
        .arg(ms)
        .arg(e.bucket.as_str())
        .arg(e.input.to_string())
        .arg(meta)
        .arg(if payload.is_some() { "1" } else { "0" })
        .arg(payload.unwrap_or_default())
        .arg(if e.delivery_id.is_some() { "1" } else { "0" })
        .arg(e.delivery_id.as_deref().unwrap_or_default())
        .arg(window)
        .arg(if e.marks.delivers() { "1" } else { "0" });
    Ok(())
}

/// The longest dedup window honoured (as in SQLite).
const MAX_DEDUP_WINDOW_MS: i64 = 3_600_000;
