//! Forwarding deliveries: one worker per output, so each destination sees
//! its requests one at a time in the order the relay sent them (the relay
//! sends oldest first), while different outputs proceed in parallel.
//!
//! A worker asked to stop finishes the request it is making, acks it, and
//! leaves the rest unacknowledged: the relay gives those to another agent
//! of the group or keeps them for this one's return.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use forward::{Forwarder, Outbound, Verdict};
use proto::pb;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One line of `hookrelay listen`: what was forwarded and how it went.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub received_at: i64,
    pub method: String,
    /// The event's path suffix and query, as sent to the destination.
    pub path: String,
    pub url: String,
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
}

pub(crate) struct Forwarding {
    forwarder: Arc<Forwarder>,
    destination: Option<String>,
    report: Option<mpsc::Sender<Forwarded>>,
    acks: mpsc::Sender<pb::Ack>,
    queue: usize,
    workers: HashMap<String, mpsc::Sender<pb::Deliver>>,
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

impl Forwarding {
    pub(crate) fn new(
        forwarder: Arc<Forwarder>,
        destination: Option<String>,
        report: Option<mpsc::Sender<Forwarded>>,
        acks: mpsc::Sender<pb::Ack>,
        max_in_flight: u32,
    ) -> Self {
        Forwarding {
            forwarder,
            destination,
            report,
            acks,
            queue: max_in_flight.max(1) as usize,
            workers: HashMap::new(),
            tasks: JoinSet::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Queues a delivery on its output's worker. The relay never sends more
    /// than `max_in_flight` unacknowledged, so a full queue means it broke
    /// that promise: the delivery is refused with a failed ack.
    pub(crate) fn submit(&mut self, deliver: pb::Deliver) -> Result<(), pb::Ack> {
        let worker = self
            .workers
            .entry(deliver.output_id.clone())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(self.queue);
                self.tasks.spawn(worker(
                    rx,
                    self.acks.clone(),
                    Arc::clone(&self.forwarder),
                    self.destination.clone(),
                    self.report.clone(),
                    self.stop.clone(),
                ));
                tx
            });
        worker.try_send(deliver).map_err(|e| {
            let deliver = e.into_inner();
            failed_ack(&deliver.delivery_id, "the agent's queue is full".into())
        })
    }

    /// Stops taking work and waits up to `grace` for requests under way.
    pub(crate) async fn stop(mut self, grace: Duration) {
        self.stop.cancel();
        self.workers.clear();
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("requests still under way at stop; the relay will redeliver them");
            self.tasks.abort_all();
        }
    }
}

async fn worker(
    mut queue: mpsc::Receiver<pb::Deliver>,
    acks: mpsc::Sender<pb::Ack>,
    forwarder: Arc<Forwarder>,
    destination: Option<String>,
    report: Option<mpsc::Sender<Forwarded>>,
    stop: CancellationToken,
) {
    loop {
        let deliver = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            next = queue.recv() => match next {
                Some(deliver) => deliver,
                None => return,
            },
        };
        let (ack, line) = forward_one(&forwarder, destination.as_deref(), deliver).await;
        if let (Some(report), Some(line)) = (&report, line) {
            let _ = report.try_send(line);
        }
        if acks.send(ack).await.is_err() {
            return;
        }
    }
}

/// Makes one delivery's request and builds its ack.
async fn forward_one(
    forwarder: &Forwarder,
    destination: Option<&str>,
    deliver: pb::Deliver,
) -> (pb::Ack, Option<Forwarded>) {
    let event = deliver.event.unwrap_or_default();
    let base = destination.unwrap_or(&deliver.url);
    let url = match forward::target_url(base, &event.path, &event.query) {
        Ok(url) => url,
        Err(e) => return (failed_ack(&deliver.delivery_id, e.to_string()), None),
    };
    let extra: BTreeMap<String, String> = deliver
        .headers
        .into_iter()
        .map(|h| (h.name, h.value))
        .collect();
    let pairs: Vec<(String, String)> = event
        .headers
        .into_iter()
        .map(|h| (h.name, h.value))
        .collect();
    let outbound = Outbound {
        method: event.method.clone(),
        url: url.clone(),
        headers: forward::outbound_headers(&pairs, &extra),
        body: Bytes::from(event.body),
        timeout: Duration::from_millis(u64::from(deliver.timeout_ms.max(1))),
    };
    let outcome = forwarder.send(outbound, deliver.want_response).await;
    let delivered = matches!(forward::verdict(&outcome), Verdict::Delivered);
    let response = match (deliver.want_response, outcome.status) {
        (true, Some(status)) => Some(pb::HttpResponse {
            status: u32::from(status),
            headers: outcome
                .headers
                .iter()
                .map(|(name, value)| pb::Header {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            body: outcome.body.to_vec(),
        }),
        _ => None,
    };
    let path = match event.query.as_str() {
        "" => event.path.clone(),
        query => format!("{}?{query}", event.path),
    };
    let line = Forwarded {
        received_at: event.received_at,
        method: event.method,
        path,
        url,
        status: outcome.status,
        latency: outcome.latency,
        error: outcome.error.clone(),
    };
    let ack = pb::Ack {
        delivery_id: deliver.delivery_id,
        status: if delivered {
            pb::AckStatus::Delivered
        } else {
            pb::AckStatus::Failed
        } as i32,
        destination_status: outcome.status.map_or(0, u32::from),
        response,
        error: outcome.error.unwrap_or_default(),
        latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
    };
    (ack, Some(line))
}

fn failed_ack(delivery_id: &str, error: String) -> pb::Ack {
    pb::Ack {
        delivery_id: delivery_id.to_owned(),
        status: pb::AckStatus::Failed as i32,
        error,
        ..Default::default()
    }
}
