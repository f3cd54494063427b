//! [`Limiter`] on Redis: one sliding window per key, shared by every node
//! (`lua/ratelimit.lua`, the approximation of `crate::limiter`).
//!
//! Every ingest request is counted, so the counting is batched like the
//! appends: one task per store takes the requests waiting (up to
//! [`MAX_HITS`]) and counts those of one key and limit in one script call,
//! in arrival order; the calls of one batch go out together on the
//! multiplexed connection. A sender's requests to one input share a key,
//! so under load a batch is a few calls instead of one per request (Redis
//! spent more on those calls than on the appends themselves: `INFO
//! commandstats` of a 32-connection ingest run, issue 14).

use std::sync::Arc;

use async_trait::async_trait;
use model::RateLimit;
use tokio::sync::{mpsc, oneshot};

use super::codec::unavailable;
use super::{Inner, RedisStore};
use crate::{Error, Limiter, RateDecision, Result};

/// Requests counted in one batch at most.
const MAX_HITS: usize = 256;
/// Requests waiting for the counting task at most (then callers wait).
pub(super) const QUEUE: usize = 4096;

/// One request to count.
pub(super) struct Hit {
    key: String,
    limit: RateLimit,
    now_ms: i64,
    reply: oneshot::Sender<Result<RateDecision>>,
}

#[async_trait]
impl Limiter for RedisStore {
    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision> {
        self.inner.con()?;
        let (reply, answer) = oneshot::channel();
        let hit = Hit {
            key: key.to_owned(),
            limit,
            now_ms,
            reply,
        };
        let stopped = || Error::Unavailable("store is closed".into());
        self.inner.hits.send(hit).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The counting task: runs until the store is dropped or closed.
pub(super) async fn counter(inner: Arc<Inner>, mut rx: mpsc::Receiver<Hit>) {
    while let Some(first) = rx.recv().await {
        // Per key and limit, in arrival order.
        let mut groups: Vec<Vec<Hit>> = vec![vec![first]];
        for _ in 1..MAX_HITS {
            let Ok(hit) = rx.try_recv() else { break };
            match groups
                .iter_mut()
                .find(|g| g[0].key == hit.key && g[0].limit == hit.limit)
            {
                Some(group) => group.push(hit),
                None => groups.push(vec![hit]),
            }
        }
        futures_util::future::join_all(groups.into_iter().map(|hits| count(&inner, hits))).await;
    }
}

/// Counts one key's requests in one script call and answers each.
async fn count(inner: &Inner, hits: Vec<Hit>) {
    let limit = hits[0].limit;
    let window_ms = i64::from(limit.window_seconds.max(1)) * 1000;
    let mut invocation = inner.scripts.rate_limit.key(inner.keys.rate(&hits[0].key));
    invocation.arg(limit.requests).arg(window_ms);
    for hit in &hits {
        invocation.arg(hit.now_ms);
    }
    let mut con = inner.conn.clone();
    let waits: Result<Vec<i64>> = invocation.invoke_async(&mut con).await.map_err(unavailable);
    match waits {
        Ok(waits) if waits.len() == hits.len() => {
            for (hit, wait) in hits.into_iter().zip(waits) {
                let _ = hit.reply.send(Ok(decision(wait)));
            }
        }
        Ok(waits) => {
            for hit in hits {
                let e = format!("rate limit answered {} of the requests", waits.len());
                let _ = hit.reply.send(Err(Error::Corrupt(e)));
            }
        }
        Err(e) => {
            let e = match e {
                Error::Unavailable(why) => why,
                other => other.to_string(),
            };
            for hit in hits {
                let _ = hit.reply.send(Err(Error::Unavailable(e.clone())));
            }
        }
    }
}

fn decision(wait_ms: i64) -> RateDecision {
    if wait_ms <= 0 {
        RateDecision::Allowed
    } else {
        RateDecision::Limited {
            retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
        }
    }
}
