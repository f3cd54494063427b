//! Prometheus metrics (DESIGN §3.5), kept by hand: a handful of counters and
//! one histogram do not need a metrics framework.
//!
//! The request counter is keyed by the matched route pattern (never the raw
//! path, whose input ids would explode the label set) and the status code.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use model::{OutputId, TenantId};

use crate::state::AppState;

/// Upper bounds of the ingest latency histogram, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

pub(crate) struct Metrics {
    /// route pattern → status → count.
    requests: Mutex<HashMap<String, HashMap<u16, u64>>>,
    ingest_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    ingest_count: AtomicU64,
    ingest_sum_micros: AtomicU64,
    events_stored: AtomicU64,
    /// Long-polls parked waiting for a commit.
    long_polls_waiting: AtomicU64,
    /// Settled delivery attempts by result, in [`DELIVERY_RESULTS`] order.
    deliveries: [AtomicU64; DELIVERY_RESULTS.len()],
    /// Deliveries under way per output (agents' and the server's own);
    /// an output leaves the map at zero, so deleted ones do not linger.
    in_flight: Mutex<HashMap<OutputId, u64>>,
    /// Per (tenant, agent group) pumped on this node: when the oldest
    /// event waiting to be sent was received (ms).
    backlog: Mutex<HashMap<(TenantId, String), i64>>,
}

/// The `result` label of `hookrelay_deliveries_total`.
const DELIVERY_RESULTS: [&str; 6] = [
    "delivered",
    "failed",
    "retry",
    "released",
    "expired",
    "skipped",
];

/// Counts one parked long-poll while it lives.
pub(crate) struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: Mutex::new(HashMap::new()),
            ingest_buckets: Default::default(),
            ingest_count: AtomicU64::new(0),
            ingest_sum_micros: AtomicU64::new(0),
            events_stored: AtomicU64::new(0),
            long_polls_waiting: AtomicU64::new(0),
            deliveries: Default::default(),
            in_flight: Mutex::new(HashMap::new()),
            backlog: Mutex::new(HashMap::new()),
        }
    }

    /// One more (`started`) or one fewer delivery of `output` under way.
    pub(crate) fn output_in_flight(&self, output: &OutputId, started: bool) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if started {
            *map.entry(output.clone()).or_insert(0) += 1;
        } else if let Some(n) = map.get_mut(output) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(output);
            }
        }
    }

    /// When the oldest event a group's pump has waiting was received
    /// (`None`: nothing waits, or the pump stopped).
    pub(crate) fn backlog_oldest(&self, tenant: &TenantId, group: &str, oldest_ms: Option<i64>) {
        let mut map = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.clone(), group.to_owned());
        match oldest_ms {
            Some(at) => {
                map.insert(key, at);
            }
            None => {
                map.remove(&key);
            }
        }
    }

    /// Counts one settled delivery (agent or server) by where it went.
    pub(crate) fn delivery_settled(&self, next: store::Settle) {
        let at = match next {
            store::Settle::Delivered => 0,
            store::Settle::Failed => 1,
            store::Settle::RetryAt(_) => 2,
            store::Settle::Released => 3,
            store::Settle::Expired => 4,
            store::Settle::Skipped => 5,
        };
        self.deliveries[at].fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a long-poll as parked until the guard drops.
    pub(crate) fn long_poll_waiting(&self) -> Waiting<'_> {
        self.long_polls_waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.long_polls_waiting)
    }

    pub(crate) fn event_stored(&self) {
        self.events_stored.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request(&self, route: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        // Look up by &str first so the common case allocates nothing.
        if let Some(by_status) = requests.get_mut(route) {
            *by_status.entry(status).or_insert(0) += 1;
        } else {
            requests.insert(route.to_owned(), HashMap::from([(status, 1)]));
        }
    }

    fn ingest_latency(&self, seconds: f64) {
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| seconds <= *b) {
            self.ingest_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.ingest_count.fetch_add(1, Ordering::Relaxed);
        self.ingest_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `queue_depth` is the store's,
    /// `agents` the hub's count of connected agents.
    pub(crate) fn render(&self, queue_depth: usize, agents: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP hookrelay_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE hookrelay_http_requests_total counter\n");
        {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows: Vec<_> = requests
                .iter()
                .flat_map(|(route, by_status)| by_status.iter().map(move |(s, c)| (route, *s, *c)))
                .collect();
            rows.sort();
            for (route, status, count) in rows {
                let _ = writeln!(
                    out,
                    "hookrelay_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str(
            "# HELP hookrelay_ingest_duration_seconds Time to answer an ingest request.\n",
        );
        out.push_str("# TYPE hookrelay_ingest_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.ingest_buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "hookrelay_ingest_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.ingest_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "hookrelay_ingest_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.ingest_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "hookrelay_ingest_duration_seconds_sum {sum}");
        let _ = writeln!(out, "hookrelay_ingest_duration_seconds_count {count}");
        out.push_str("# HELP hookrelay_events_stored_total Events durably stored.\n");
        out.push_str("# TYPE hookrelay_events_stored_total counter\n");
        let _ = writeln!(
            out,
            "hookrelay_events_stored_total {}",
            self.events_stored.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP hookrelay_store_queue_depth Writes waiting for the store's next commit.\n",
        );
        out.push_str("# TYPE hookrelay_store_queue_depth gauge\n");
        let _ = writeln!(out, "hookrelay_store_queue_depth {queue_depth}");
        out.push_str(
            "# HELP hookrelay_long_polls_waiting Event long-polls parked until the next commit.\n",
        );
        out.push_str("# TYPE hookrelay_long_polls_waiting gauge\n");
        let _ = writeln!(
            out,
            "hookrelay_long_polls_waiting {}",
            self.long_polls_waiting.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP hookrelay_deliveries_total Delivery attempts settled, by where they went.\n",
        );
        out.push_str("# TYPE hookrelay_deliveries_total counter\n");
        for (result, count) in DELIVERY_RESULTS.iter().zip(&self.deliveries) {
            let _ = writeln!(
                out,
                "hookrelay_deliveries_total{{result=\"{result}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP hookrelay_deliveries_in_flight Deliveries under way per output on this node.\n",
        );
        out.push_str("# TYPE hookrelay_deliveries_in_flight gauge\n");
        {
            let map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows: Vec<_> = map.iter().map(|(o, n)| (o.as_str(), *n)).collect();
            rows.sort_unstable();
            for (output, n) in rows {
                let _ = writeln!(
                    out,
                    "hookrelay_deliveries_in_flight{{output=\"{output}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP hookrelay_backlog_age_seconds Age of the oldest event waiting to be sent, per agent group pumped on this node.\n",
        );
        out.push_str("# TYPE hookrelay_backlog_age_seconds gauge\n");
        {
            let now = store::clock::now_ms();
            let map = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows: Vec<_> = map.iter().collect();
            rows.sort_unstable();
            for ((tenant, group), oldest) in rows {
                let age = now.saturating_sub(*oldest).max(0) as f64 / 1000.0;
                let _ = writeln!(
                    out,
                    "hookrelay_backlog_age_seconds{{tenant=\"{}\",group=\"{}\"}} {age}",
                    label(tenant.as_str()),
                    label(group)
                );
            }
        }
        out.push_str("# HELP hookrelay_agents_connected Agents connected to this node.\n");
        out.push_str("# TYPE hookrelay_agents_connected gauge\n");
        let _ = writeln!(out, "hookrelay_agents_connected {agents}");
        out
    }
}

/// A Prometheus label value: a group name is the tenant's choice.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Middleware: counts every request by route and status, and times ingest.
pub(crate) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.request(route, response.status().as_u16());
    if route.contains("/webhooks/") {
        state
            .metrics
            .ingest_latency(started.elapsed().as_secs_f64());
    }
    response
}
