//! Payloads of ephemeral events, held in memory only, for the agents
//! connected when they arrive (DESIGN §6): the store keeps their metadata,
//! never their headers, query or body. A payload is dropped after [`HOLD`]
//! (every group connected at the time has taken it by then) or when the
//! holder is full; a delivery whose payload is gone expires.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use model::EventId;
use tokio::time::Instant;

/// How long an ephemeral payload waits for an agent to take it.
pub(crate) const HOLD: Duration = Duration::from_secs(60);

/// At most this many bytes of ephemeral payloads are held at once.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// The parts of an ephemeral event the store never sees.
pub(crate) struct EphemeralPayload {
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) query: String,
    pub(crate) body: Bytes,
}

impl EphemeralPayload {
    fn size(&self) -> usize {
        self.body.len()
            + self.query.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

#[derive(Default)]
struct Held {
    by_id: HashMap<EventId, (Arc<EphemeralPayload>, Instant)>,
    /// Arrival order, for expiry and eviction.
    order: VecDeque<(EventId, Instant)>,
    bytes: usize,
}

pub(crate) struct EphemeralPayloads {
    held: Mutex<Held>,
}

impl EphemeralPayloads {
    pub(crate) fn new() -> Self {
        EphemeralPayloads {
            held: Mutex::new(Held::default()),
        }
    }

    /// Holds an accepted ephemeral event's payload for its deliveries.
    pub(crate) fn hold(&self, id: EventId, payload: EphemeralPayload) {
        let mut held = super::lock(&self.held);
        let now = Instant::now();
        held.bytes += payload.size();
        held.by_id.insert(id, (Arc::new(payload), now));
        held.order.push_back((id, now));
        while let Some(&(oldest, at)) = held.order.front() {
            let stale = now.duration_since(at) > HOLD || held.bytes > MAX_BYTES;
            if !stale {
                break;
            }
            held.order.pop_front();
            if let Some((gone, _)) = held.by_id.remove(&oldest) {
                held.bytes -= gone.size();
            }
        }
    }

    pub(crate) fn get(&self, id: &EventId) -> Option<Arc<EphemeralPayload>> {
        let held = super::lock(&self.held);
        let (found, at) = held.by_id.get(id)?;
        (at.elapsed() <= HOLD).then(|| Arc::clone(found))
    }
}
