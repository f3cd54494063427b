//! Appends: one writer task per store batches concurrent appends into one
//! pipeline of `lua/append.lua` calls (group commit), minting each event's
//! id before sealing its payload (the id is the payload's associated data).
//!
//! Order across nodes: the node mints a ULID at its estimate of Redis time,
//! above the last id it has seen for the tenant; the script refuses an id
//! not above the tenant's last committed id (`last`), or whose time is
//! older than Redis `TIME` minus [`SKEW_MS`], and answers the last id and
//! Redis time; the node re-mints above them and retries (at most
//! [`MAX_ROUNDS`] times). So ids increase strictly in commit order per
//! tenant, and an event committed at Redis time `t` has `receivedAt >= t -
//! SKEW_MS`: what `visible_before` builds on (`cluster::Clock`).
//!
//! An event whose sealing and sending take longer than [`SKEW_MS`] (a
//! 900 KB body in a debug build on a loaded machine took ~0.7 s) would be
//! refused for its age on every round, and re-sealed each time: its retry
//! is minted ahead of Redis time by what the refused round lagged
//! ([`lead_after`]), so it lands. A lead only makes `receivedAt` later than
//! the commit, never earlier, so the bound above still holds.
//!
//! Within one pipeline a tenant's events are minted in pipeline order, and
//! Redis runs a connection's commands in order, so a node's own appends
//! never refuse each other; only another node's commit can force a retry.

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
/// Re-mints of one event before its append fails `Unavailable`. Nodes
/// appending to one tenant at once refuse each other's stale batches: with
/// 8 rounds, three nodes under 8 connections saw 0.17 % of appends fail
/// (503, for the sender to retry); a round is one Redis round trip.
const MAX_ROUNDS: u32 = 64;
/// Appends sent in one pipeline at most.
const MAX_BATCH: usize = 256;
/// Appends waiting for the writer at most (then callers wait).
pub(super) const QUEUE: usize = 4096;

/// One append waiting for the writer.
pub(super) struct Job {
    pub(super) event: NewEvent,
    /// The payload laid out (`sealed::event_plaintext`), not yet sealed.
    pub(super) plaintext: Option<Vec<u8>>,
    pub(super) reply: oneshot::Sender<Result<Appended>>,
}

struct Try {
    job: Job,
    rounds: u32,
    /// How far ahead of Redis time this append's next id is minted.
    lead_ms: i64,
}

/// The most an id is minted ahead of Redis time: far above any seal and
/// send of a body within the largest body limit.
const MAX_LEAD_MS: i64 = 30_000;

/// The lead of the next round of an append minted at `minted_ms` and
/// refused when Redis time was `redis_now`: twice what it lagged when it
/// lagged beyond half the skew bound (age refusals), else unchanged.
fn lead_after(lead_ms: i64, minted_ms: i64, redis_now: i64) -> i64 {
    let lag = redis_now - minted_ms;
    if lag > SKEW_MS / 2 {
        (lead_ms + lag * 2).min(MAX_LEAD_MS)
    } else {
        lead_ms
    }
}

/// The writer task: runs until the store is dropped or closed.
pub(super) async fn writer(inner: Arc<Inner>, mut rx: mpsc::Receiver<Job>) {
    let mut last: HashMap<TenantId, Ulid> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![Try {
            job: first,
            rounds: 0,
            lead_ms: 0,
        }];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(Try {
                    job,
                    rounds: 0,
                    lead_ms: 0,
                }),
                Err(_) => break,
            }
        }
        let busy = inner.busy.lock().await;
        inner.queued.fetch_sub(batch.len(), Ordering::SeqCst);
        let mut committed = false;
        while !batch.is_empty() {
            let (again, any) = round(&inner, &mut last, batch).await;
            committed |= any;
            batch = again;
        }
        if committed {
            inner.tick_commits().await;
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

/// Mints the next id of `tenant`: at Redis time, or just above the last
/// id seen when that is not older.
fn mint(last: &mut HashMap<TenantId, Ulid>, tenant: &TenantId, now_ms: i64) -> Ulid {
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

/// One pipeline: answers the settled appends, returns those to re-mint and
/// whether anything was committed.
async fn round(
    inner: &Inner,
    last: &mut HashMap<TenantId, Ulid>,
    batch: Vec<Try>,
) -> (Vec<Try>, bool) {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    let mut minted = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    for t in batch {
        let ulid = mint(
            last,
            &t.job.event.tenant,
            inner.clock.redis_now() + t.lead_ms,
        );
        let id = EventId::from_ulid(ulid);
        match command(inner, &t.job, &id, ulid.timestamp_ms() as i64) {
            Ok(args) => {
                pipe.add_command(args);
                minted.push(id);
                sent.push(t);
            }
            Err(e) => {
                let _ = t.job.reply.send(Err(e));
            }
        }
    }
    if sent.is_empty() {
        return (Vec::new(), false);
    }
    inner.pipelines.fetch_add(1, Ordering::SeqCst);
    // The raw connection: appends queued before `close` still go through.
    let mut con = inner.conn.clone();
    let answers: Vec<redis::RedisResult<Value>> = match pipe.query_async(&mut con).await {
        Ok(answers) => answers,
        Err(e) => {
            // Which of them Redis ran is unknown: each caller hears
            // Unavailable, and a sender retry may store a copy.
            for t in sent {
                let _ = t.job.reply.send(Err(codec::unavailable(e.clone())));
            }
            return (Vec::new(), false);
        }
    };
    let mut again = Vec::new();
    let mut committed = false;
    let mut reload = false;
    for ((mut t, id), answer) in sent.into_iter().zip(minted).zip(answers) {
        let outcome = match answer {
            Ok(v) => decode(v),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                reload = true;
                Outcome::Retry(None, None)
            }
            Err(e) => Outcome::Done(Err(codec::unavailable(e))),
        };
        match outcome {
            Outcome::Done(Ok(())) => {
                committed = true;
                let received_at = id.ulid().timestamp_ms() as i64;
                let _ = t.job.reply.send(Ok(Appended { id, received_at }));
            }
            Outcome::Done(Err(e)) => {
                let _ = t.job.reply.send(Err(e));
            }
            Outcome::Retry(seen, now) => {
                if let Some(seen) = seen {
                    let entry = last.entry(t.job.event.tenant.clone()).or_insert(seen);
                    *entry = (*entry).max(seen);
                }
                if let Some(now) = now {
                    inner.clock.observe(now);
                    t.lead_ms = lead_after(t.lead_ms, id.ulid().timestamp_ms() as i64, now);
                }
                t.rounds += 1;
                if t.rounds >= MAX_ROUNDS {
                    let e = Error::Unavailable("could not order the event after retries".into());
                    let _ = t.job.reply.send(Err(e));
                } else {
                    again.push(t);
                }
            }
        }
    }
    if reload {
        let _ = inner
            .scripts
            .append
            .prepare_invoke()
            .load_async(&mut con)
            .await;
    }
    (again, committed)
}

enum Outcome {
    Done(Result<()>),
    /// Re-mint above this id and this Redis time.
    Retry(Option<Ulid>, Option<i64>),
}

fn decode(v: Value) -> Outcome {
    let parsed = (|| -> Result<Outcome> {
        let mut items = codec::array(v)?.into_iter();
        let tag = codec::text(items.next().unwrap_or(Value::Nil))?;
        Ok(match tag.as_str() {
            "ok" => Outcome::Done(Ok(())),
            "nf" => Outcome::Done(Err(Error::NotFound)),
            "dup" => Outcome::Done(Err(Error::Duplicate)),
            "retry" => {
                let seen = codec::text(items.next().unwrap_or(Value::Nil))?;
                let seen = seen.parse::<EventId>().ok().map(|id| id.ulid());
                let now = codec::opt_ms(items.next().unwrap_or(Value::Nil))?;
                Outcome::Retry(seen, now)
            }
            other => Outcome::Done(Err(Error::Corrupt(format!("append answered {other:?}")))),
        })
    })();
    parsed.unwrap_or_else(|e| Outcome::Done(Err(e)))
}

/// The EVALSHA of one append.
fn command(inner: &Inner, job: &Job, id: &EventId, ms: i64) -> Result<redis::Cmd> {
    let e = &job.event;
    let id_text = id.to_string();
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
    let payload = match &job.plaintext {
        Some(plain) => Some(sealed::seal_event(&inner.crypto, &id_text, plain)?.0),
        None => None,
    };
    let window = e.dedup_window_ms.clamp(0, MAX_DEDUP_WINDOW_MS);
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(inner.scripts.append.get_hash())
        .arg(1)
        .arg(inner.keys.tenant(&e.tenant))
        .arg(&id_text)
        .arg(ms)
        .arg(e.bucket.as_str())
        .arg(e.input.to_string())
        .arg(to_json(&meta)?)
        .arg(if payload.is_some() { "1" } else { "0" })
        .arg(payload.unwrap_or_default())
        .arg(if e.delivery_id.is_some() { "1" } else { "0" })
        .arg(e.delivery_id.as_deref().unwrap_or_default())
        .arg(window)
        .arg(SKEW_MS)
        .arg(if e.marks.delivers() { "1" } else { "0" });
    Ok(cmd)
}

/// The longest dedup window honoured (as in SQLite).
const MAX_DEDUP_WINDOW_MS: i64 = 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_refused_for_its_age_is_minted_ahead_by_its_lag() {
        // Refused 700 ms behind: the next round is minted 1.4 s ahead.
        assert_eq!(lead_after(0, 10_000, 10_700), 1_400);
        // Refused for another node's id, not its age: no lead.
        assert_eq!(lead_after(0, 10_000, 10_010), 0);
        // Leads add up, within the cap.
        assert_eq!(lead_after(1_400, 11_400, 12_100), 2_800);
        assert_eq!(lead_after(0, 0, 100_000), MAX_LEAD_MS);
    }
}
