//! Tunnel figures for `/metrics` (issue 15): public requests by status
//! class, the time to the answer's head as a histogram, bytes each way,
//! and the agents connected to this node per tunnel. Counted once per
//! request, when its record goes to the request log, so the figures and
//! the log agree. Node-wide except the agents gauge, whose `tunnel` label
//! is bounded by the tunnels that have an agent here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::log::RequestRecord;

/// Upper bounds of the latency histogram, in seconds: a tunnel adds a
/// fraction of a millisecond, a destination may take up to the 60 s limit.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0,
];

/// The `class` label: `1xx` … `5xx`; requests that got no answer from the
/// destination (status 0) count as `5xx`, as the visitor saw a 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Default)]
pub(crate) struct TunnelMetrics {
    by_class: [AtomicU64; CLASSES.len()],
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl TunnelMetrics {
    /// Counts one finished request.
    pub(crate) fn finished(&self, record: &RequestRecord) {
        let class = match record.status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(record.bytes_in, Ordering::Relaxed);
        self.bytes_out
            .fetch_add(record.bytes_out, Ordering::Relaxed);
        // Only requests that reached an agent have a latency.
        if let Some(micros) = record.latency_micros {
            let seconds = micros as f64 / 1e6;
            if let Some(i) = LATENCY_BOUNDS.iter().position(|b| seconds <= *b) {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
            self.latency_count.fetch_add(1, Ordering::Relaxed);
            self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
        }
    }

    /// Appends the Prometheus text; `agents` is (tunnel id, agents
    /// connected here) for every tunnel with at least one.
    pub(crate) fn render(&self, out: &mut String, agents: &[(String, usize)]) {
        out.push_str("# HELP hookrelay_tunnel_requests_total Public requests through tunnels, by status class.\n");
        out.push_str("# TYPE hookrelay_tunnel_requests_total counter\n");
        for (class, count) in CLASSES.iter().zip(&self.by_class) {
            let _ = writeln!(
                out,
                "hookrelay_tunnel_requests_total{{class=\"{class}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP hookrelay_tunnel_request_duration_seconds Time from sending a request to an agent to the answer's head.\n");
        out.push_str("# TYPE hookrelay_tunnel_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "hookrelay_tunnel_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "hookrelay_tunnel_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "hookrelay_tunnel_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "hookrelay_tunnel_request_duration_seconds_count {count}"
        );
        out.push_str("# HELP hookrelay_tunnel_bytes_total Body bytes through tunnels: in from visitors, out to them.\n");
        out.push_str("# TYPE hookrelay_tunnel_bytes_total counter\n");
        for (direction, n) in [("in", &self.bytes_in), ("out", &self.bytes_out)] {
            let _ = writeln!(
                out,
                "hookrelay_tunnel_bytes_total{{direction=\"{direction}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP hookrelay_tunnel_agents Tunnel agents connected to this node, by tunnel.\n",
        );
        out.push_str("# TYPE hookrelay_tunnel_agents gauge\n");
        for (tunnel, n) in agents {
            let _ = writeln!(out, "hookrelay_tunnel_agents{{tunnel=\"{tunnel}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16, latency_micros: Option<u64>) -> RequestRecord {
        RequestRecord {
            at: 0,
            method: "GET".into(),
            path: "/".into(),
            status,
            latency_ms: 0,
            latency_micros,
            bytes_in: 3,
            bytes_out: 5,
            client_ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn requests_count_by_class_latency_and_bytes() {
        let m = TunnelMetrics::default();
        m.finished(&record(200, Some(300)));
        m.finished(&record(404, Some(2_000_000)));
        m.finished(&record(502, None));
        let mut out = String::new();
        m.render(&mut out, &[("tun_a".into(), 2)]);
        for line in [
            "hookrelay_tunnel_requests_total{class=\"2xx\"} 1",
            "hookrelay_tunnel_requests_total{class=\"4xx\"} 1",
            "hookrelay_tunnel_requests_total{class=\"5xx\"} 1",
            "hookrelay_tunnel_request_duration_seconds_bucket{le=\"0.0005\"} 1",
            "hookrelay_tunnel_request_duration_seconds_bucket{le=\"5\"} 2",
            "hookrelay_tunnel_request_duration_seconds_count 2",
            "hookrelay_tunnel_bytes_total{direction=\"in\"} 9",
            "hookrelay_tunnel_bytes_total{direction=\"out\"} 15",
            "hookrelay_tunnel_agents{tunnel=\"tun_a\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in\n{out}");
        }
    }
}
