//! A destination that records every request before answering it. What it
//! answers depends on the path: `/status/{code}`, `/hang` (never),
//! `/big` (a body over the forwarder's bound), `/redirect` (302 to
//! `/landing`), `/redirect-to?<url>` (302 to `<url>`), anything else 200
//! with body `ok`.

use std::net::SocketAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Size of `/big`'s body: more than `forward::MAX_RESPONSE_BODY`.
pub(crate) const BIG: usize = forward::MAX_RESPONSE_BODY + 4096;

#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Stops serving when dropped.
pub(crate) struct Recorder {
    pub(crate) addr: SocketAddr,
    rx: mpsc::Receiver<Received>,
    task: JoinHandle<()>,
}

impl Recorder {
    pub(crate) async fn spawn() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = mpsc::channel(16);
        let app = Router::new().fallback(record).with_state(tx);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self { addr, rx, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received; call after the send it belongs to.
    pub(crate) fn received(&mut self) -> Received {
        self.rx
            .try_recv()
            .expect("the destination received a request")
    }

    /// Whether no (further) request was received.
    pub(crate) fn is_idle(&mut self) -> bool {
        self.rx.try_recv().is_err()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(tx): State<mpsc::Sender<Received>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("read body");
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    tx.send(Received {
        method: parts.method.as_str().to_owned(),
        path_and_query,
        headers: parts.headers,
        body,
    })
    .await
    .expect("test holds the receiver");

    if let Some(code) = path.strip_prefix("/status/") {
        let status = code.parse().ok().and_then(|c| StatusCode::from_u16(c).ok());
        return (status.expect("a status code"), "answer").into_response();
    }
    match path.as_str() {
        "/hang" => std::future::pending().await,
        "/big" => Body::from(vec![b'x'; BIG]).into_response(),
        "/redirect" => (StatusCode::FOUND, [("location", "/landing")]).into_response(),
        "/redirect-to" => {
            let to = parts.uri.query().unwrap_or("/").to_owned();
            (StatusCode::FOUND, [("location", to)]).into_response()
        }
        _ => (StatusCode::OK, [("x-reply", "yes")], "ok").into_response(),
    }
}
