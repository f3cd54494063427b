//! [`Destination`]: a real HTTP server on `127.0.0.1:0` standing in for a
//! service inside the private network. It records every request byte for
//! byte and answers from a script (default: 200 `ok`), after a chosen
//! latency, counting how many requests it answers at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

/// One request as the destination received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as on the request line.
    pub target: String,
    /// Names lower-cased, in arrival order; values as text (lossy).
    pub headers: Vec<(String, String)>,
    /// The same headers with their exact value bytes.
    pub raw_headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

impl Received {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The exact bytes of the first value of header `name`.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.raw_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A scripted answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    arrived: tokio::sync::Notify,
    /// How long each request takes to answer (a real service's latency).
    latency: Duration,
    /// Requests being answered now, and the most there ever were.
    answering: AtomicUsize,
    peak: AtomicUsize,
}

/// A recording HTTP server; stops when dropped.
pub struct Destination {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl Destination {
    pub async fn spawn() -> Destination {
        Self::with_latency(Duration::ZERO).await
    }

    /// A destination that takes `latency` to answer each request (an
    /// hour stands for one that never answers).
    pub async fn with_latency(latency: Duration) -> Destination {
        let inner = Arc::new(Inner {
            latency,
            ..Inner::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the destination");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(Arc::clone(&inner));
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
        });
        Destination { url, inner, stop }
    }

    /// Queues answers for the next requests, in order.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner
            .script
            .lock()
            .expect("script lock")
            .extend(answers);
    }

    /// The most requests this destination was answering at once.
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("received lock").clone()
    }

    /// Resolves at the next request's arrival (create it before causing the
    /// request): lets a latency measurement wait without polling.
    pub fn next_arrival(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut arrival = Box::pin(self.inner.arrived.notified());
        // Registered now, so an arrival before the first poll still counts.
        arrival.as_mut().enable();
        arrival
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let what = format!("the destination received {n} requests");
        crate::wait_until(deadline, &what, || async { self.received().len() >= n }).await;
        self.received()
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn record(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        raw_headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    // Counted until answered, or until the caller hangs up (the server
    // then drops this handler).
    let _answering = Answering::start(&inner);
    inner.received.lock().expect("received lock").push(received);
    inner.arrived.notify_waiters();
    if !inner.latency.is_zero() {
        tokio::time::sleep(inner.latency).await;
    }
    let answer = inner.script.lock().expect("script lock").pop_front();
    let (status, headers, body) = answer.unwrap_or((200, Vec::new(), "ok".to_owned()));
    let mut response = (
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
        body,
    )
        .into_response();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(name),
            axum::http::HeaderValue::try_from(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// One request being answered.
struct Answering<'a>(&'a Inner);

impl<'a> Answering<'a> {
    fn start(inner: &'a Inner) -> Self {
        let now = inner.answering.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak.fetch_max(now, Ordering::SeqCst);
        Answering(inner)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::SeqCst);
    }
}
