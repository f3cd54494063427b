//! The local service behind the tunnel: a real axum server on an ephemeral
//! loopback port that echoes requests (counting bodies as they stream,
//! never holding them), streams bodies of any size, chunked and SSE
//! answers (the SSE one waits for the test between events, so an event
//! can only arrive if it was streamed), a WebSocket echo, and a request
//! that is held until the test lets it go.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Notify;

#[derive(Clone)]
struct Shared {
    name: &'static str,
    /// The SSE handler's second event and `/hold`'s answer wait on this.
    go: Arc<Notify>,
    held: Arc<Notify>,
}

pub(super) struct Destination {
    pub(super) url: String,
    pub(super) go: Arc<Notify>,
    /// Notified when a `/hold` request has arrived.
    pub(super) held: Arc<Notify>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for Destination {
    fn drop(&mut self) {
        self._server.abort();
    }
}

pub(super) async fn spawn(name: &'static str) -> Destination {
    let shared = Shared {
        name,
        go: Arc::new(Notify::new()),
        held: Arc::new(Notify::new()),
    };
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo))
        .route("/bytes/{n}", get(bytes))
        .route("/chunked", get(chunked))
        .route("/sse", get(sse))
        .route("/ws", get(websocket))
        .route("/hold", get(hold))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Destination {
        url,
        go: shared.go,
        held: shared.held,
        _server: server,
    }
}

/// `{"dest", "method", "path", "headers", "len"}`, the body counted as it
/// streams in.
async fn echo(State(s): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut len = 0usize;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => len += chunk.len(),
            Err(_) => return (axum::http::StatusCode::BAD_REQUEST, "body failed").into_response(),
        }
    }
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    axum::Json(json!({
        "dest": s.name, "method": parts.method.as_str(), "path": path, "headers": headers, "len": len,
    }))
    .into_response()
}

/// `n` zero bytes in 64 KiB chunks, produced as the reader takes them.
async fn bytes(Path(n): Path<usize>) -> Response {
    const CHUNK: usize = 64 * 1024;
    let chunks = n.div_ceil(CHUNK);
    let stream = futures_util::stream::iter(0..chunks).map(move |i| {
        let size = CHUNK.min(n - i * CHUNK);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; size]))
    });
    Body::from_stream(stream).into_response()
}

async fn chunked() -> Response {
    let parts = ["one,", "two,", "three"].map(|s| Ok::<_, std::io::Error>(bytes::Bytes::from(s)));
    Body::from_stream(futures_util::stream::iter(parts)).into_response()
}

/// One event, then (only once the test saw it and said go) a second.
async fn sse(State(s): State<Shared>) -> Response {
    let go = s.go.clone();
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let go = go.clone();
        async move {
            match step {
                0 => Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from("data: first\n\n")),
                    1,
                )),
                1 => {
                    go.notified().await;
                    Some((Ok(bytes::Bytes::from("data: second\n\n")), 2))
                }
                _ => None,
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn websocket(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let reply = match message {
                Message::Text(t) => Message::Text(format!("echo: {}", t.as_str()).into()),
                Message::Binary(b) => Message::Binary(b),
                Message::Close(_) => break,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

/// Answers only when the test says go (bounded: 30 s).
async fn hold(State(s): State<Shared>) -> Response {
    s.held.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.go.notified()).await;
    format!("released by {}", s.name).into_response()
}
