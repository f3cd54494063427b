//! Each tunnel's recent requests, as metadata only (DESIGN §10: time,
//! method, path, status, latency, bytes in and out, client IP; never
//! bodies, headers or the query, which may carry credentials), in a ring
//! of [`CAPACITY`] per tunnel on the node that served them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use model::TunnelId;
use serde::Serialize;

/// Requests kept per tunnel: about 150 bytes each, so 150 KiB per tunnel.
pub(crate) const CAPACITY: usize = 1000;

/// One request through a tunnel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestRecord {
    /// When it arrived, ms since the epoch.
    pub(crate) at: i64,
    pub(crate) method: String,
    /// The path as the destination saw it, without the query.
    pub(crate) path: String,
    /// 0 when no answer came from the destination.
    pub(crate) status: u16,
    /// To the response head, in ms.
    pub(crate) latency_ms: u64,
    /// The same in µs, for the metrics' histogram; `None` when no agent
    /// was asked. Not part of the log's view.
    #[serde(skip)]
    pub(crate) latency_micros: Option<u64>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) client_ip: String,
}

/// The rings, by tunnel.
pub(crate) struct RequestLog {
    rings: Mutex<HashMap<TunnelId, VecDeque<RequestRecord>>>,
}

impl RequestLog {
    pub(crate) fn new() -> Self {
        RequestLog {
            rings: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn push(&self, tunnel: &TunnelId, record: RequestRecord) {
        let mut rings = super::lock(&self.rings);
        let ring = rings.entry(tunnel.clone()).or_default();
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// Newest first, at most `limit`.
    pub(crate) fn recent(&self, tunnel: &TunnelId, limit: usize) -> Vec<RequestRecord> {
        super::lock(&self.rings)
            .get(tunnel)
            .map(|ring| ring.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets a deleted tunnel's ring.
    pub(crate) fn forget(&self, tunnel: &TunnelId) {
        super::lock(&self.rings).remove(tunnel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16) -> RequestRecord {
        RequestRecord {
            at: 0,
            method: "GET".into(),
            path: "/".into(),
            status,
            latency_ms: 1,
            latency_micros: None,
            bytes_in: 0,
            bytes_out: 0,
            client_ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_capacity_records() {
        let log = RequestLog::new();
        let id = TunnelId::generate();
        for n in 0..(CAPACITY + 5) {
            log.push(&id, record(n as u16));
        }
        let recent = log.recent(&id, usize::MAX);
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].status as usize, CAPACITY + 4);
        assert_eq!(log.recent(&id, 2).len(), 2);
        log.forget(&id);
        assert!(log.recent(&id, 10).is_empty());
    }
}
