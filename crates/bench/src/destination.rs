//! [`Destination`]: the service behind the agents, an HTTP/1.1 server on
//! `127.0.0.1:0` that answers 200 (at once, or after a set latency) and records when each delivery
//! arrived. Requests come as `/g<group>/<seq>`: each agent's
//! `--destination` is `<url>/g<group>` and each webhook is posted to
//! `<input>/<seq>` (the relay keeps the path suffix).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

#[derive(Default)]
struct Arrivals {
    /// Distinct (group, seq) seen.
    seen: HashSet<(u32, u64)>,
    /// seq -> (groups that have it, first and last arrival).
    by_seq: HashMap<u64, (u32, Instant, Instant)>,
    /// group -> (distinct deliveries, first and last arrival).
    by_group: HashMap<u32, (u64, Instant, Instant)>,
    duplicates: u64,
    unparsed: u64,
}

/// A recording destination; its accept loop ends when dropped.
pub(crate) struct Destination {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    arrivals: Arc<Mutex<Arrivals>>,
    distinct: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Destination {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Destination {
    pub(crate) async fn spawn() -> anyhow::Result<Destination> {
        Self::spawn_with_latency(Duration::ZERO).await
    }

    /// A destination that takes `latency` to answer each request (a timer,
    /// not work: any number of requests wait at once).
    pub(crate) async fn spawn_with_latency(latency: Duration) -> anyhow::Result<Destination> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let arrivals = Arc::new(Mutex::new(Arrivals::default()));
        let (count, distinct) = watch::channel(0u64);
        let count = Arc::new(count);
        let record = arrivals.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (record, count) = (record.clone(), count.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (record, count) = (record.clone(), count.clone());
                            async move {
                                let at = Instant::now();
                                let path = req.uri().path().to_owned();
                                let _ = req.into_body().collect().await;
                                note(&record, &count, &path, at);
                                if !latency.is_zero() {
                                    tokio::time::sleep(latency).await;
                                }
                                Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                    bytes::Bytes::from_static(b"ok"),
                                )))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Destination {
            url,
            arrivals,
            distinct,
            task,
        })
    }

    /// The `--destination` of the agent of group `g`.
    pub(crate) fn for_group(&self, g: u32) -> String {
        format!("{}/g{g}", self.url)
    }

    /// Distinct deliveries so far.
    pub(crate) fn count(&self) -> u64 {
        *self.distinct.borrow()
    }

    /// Ticks at every new distinct delivery.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.distinct.clone()
    }

    /// Waits until at least `n` distinct deliveries have arrived.
    pub(crate) async fn wait_for(&self, n: u64, patience: Duration) -> anyhow::Result<Instant> {
        let mut rx = self.distinct.clone();
        let reached =
            tokio::time::timeout(patience, async { rx.wait_for(|c| *c >= n).await.is_ok() }).await;
        match reached {
            Ok(true) => Ok(Instant::now()),
            Ok(false) => bail!("the destination stopped"),
            Err(_) => bail!(
                "only {} of {n} deliveries arrived within {patience:?}",
                self.count()
            ),
        }
    }

    /// (distinct deliveries, first arrival, last arrival) of group `g`.
    pub(crate) fn group_span(&self, g: u32) -> Option<(u64, Instant, Instant)> {
        let a = self.arrivals.lock().ok()?;
        a.by_group.get(&g).copied()
    }

    /// When the last of `groups` groups received `seq` (None if not all did).
    pub(crate) fn last_arrival(&self, seq: u64, groups: u32) -> Option<Instant> {
        let a = self.arrivals.lock().ok()?;
        a.by_seq
            .get(&seq)
            .filter(|(n, _, _)| *n >= groups)
            .map(|(_, _, last)| *last)
    }

    /// (duplicates, requests whose path was not `/g<n>/<seq>`).
    pub(crate) fn anomalies(&self) -> (u64, u64) {
        self.arrivals
            .lock()
            .map(|a| (a.duplicates, a.unparsed))
            .unwrap_or_default()
    }
}

fn note(record: &Mutex<Arrivals>, count: &watch::Sender<u64>, path: &str, at: Instant) {
    let parsed = path.strip_prefix("/g").and_then(|rest| {
        let (g, seq) = rest.split_once('/')?;
        Some((g.parse::<u32>().ok()?, seq.parse::<u64>().ok()?))
    });
    let Ok(mut a) = record.lock() else { return };
    let Some((g, seq)) = parsed else {
        a.unparsed += 1;
        return;
    };
    if !a.seen.insert((g, seq)) {
        a.duplicates += 1;
        return;
    }
    let entry = a.by_seq.entry(seq).or_insert((0, at, at));
    entry.0 += 1;
    entry.2 = at;
    let group = a.by_group.entry(g).or_insert((0, at, at));
    group.0 += 1;
    group.2 = at;
    // Sent under the lock so the count never goes backwards.
    count.send_replace(a.seen.len() as u64);
}
