//! Forwarding deliveries: each as it arrives, concurrently, up to the
//! agent's `--max-in-flight`. The relay decides how many requests each
//! destination sees at once and in what order (an output's `concurrency`
//! and `ordered`, DESIGN §5): it never sends more than `max_in_flight`
//! unacknowledged, and sends an `ordered` output's next delivery only once
//! the previous one is acked.
//!
//! Stopping lets the requests under way finish and ack (within a grace);
//! what the relay sent and never heard back about goes to another agent of
//! the group or waits for this one's return.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use forward::{Forwarder, Outbound, Verdict};
use proto::pb;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

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
    /// `max_in_flight` permits: one per request under way.
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
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
            slots: Arc::new(Semaphore::new(max_in_flight.max(1) as usize)),
            tasks: JoinSet::new(),
        }
    }

    /// Starts a delivery's request. The relay never sends more than
    /// `max_in_flight` unacknowledged, so no free slot means it broke that
    /// promise: the delivery is refused with a failed ack.
    pub(crate) fn submit(&mut self, deliver: pb::Deliver) -> Result<(), pb::Ack> {
        // Finished requests leave their (empty) results behind until reaped.
        while self.tasks.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return Err(failed_ack(
                &deliver.delivery_id,
                "the agent's in-flight limit is reached".into(),
            ));
        };
        let forwarder = Arc::clone(&self.forwarder);
        let destination = self.destination.clone();
        let report = self.report.clone();
        let acks = self.acks.clone();
        self.tasks.spawn(async move {
            let (ack, line) = forward_one(&forwarder, destination.as_deref(), deliver).await;
            if let (Some(report), Some(line)) = (&report, line) {
                let _ = report.try_send(line);
            }
            // The slot is free once the ack is on its way to the relay.
            let _ = acks.send(ack).await;
            drop(slot);
        });
        Ok(())
    }

    /// Stops taking work and waits up to `grace` for requests under way.
    pub(crate) async fn stop(mut self, grace: Duration) {
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
    // Byte-exact: `raw_value` when the server sent one (DESIGN §8).
    let pairs: Vec<(String, Vec<u8>)> = event
        .headers
        .into_iter()
        .map(pb::Header::into_bytes)
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
                    raw_value: Vec::new(),
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
