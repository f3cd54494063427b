//! The accept loop: hyper connections (HTTP/1.1 and HTTP/2, in TLS when
//! configured) with a bound on open connections, a header read and TLS
//! handshake timeout against slow clients, and a graceful drain on shutdown.
//!
//! At the bound, a newcomer makes the oldest connection that has not yet
//! brought a request to the router give way (`Waiting`), the way nginx
//! reuses idle connections when it runs out: otherwise 10,000 silent or
//! slow-loris connections would keep real senders in the kernel backlog
//! until the header timeout freed a slot (measured: 8 s for a sender, in
//! the `faults::loris` test of the `hookrelay` crate). A connection whose
//! first request has reached the router is never evicted, so no request
//! is cut.
//!
//! Every connection's bytes pass through `framing::Guarded` on their way to
//! hyper, which refuses HTTP/1 framing hyper alone would accept but a front
//! proxy may read otherwise.
//!
//! axum's `serve` hides hyper's builder, and we need its timeouts; this is
//! the axum `serve-with-hyper` example with those knobs turned.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::Config;
use crate::framing::Guarded;
use crate::state::AppState;

/// HTTP/2 receive window of a connection (all its streams together).
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// HTTP/2 receive window of one stream.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// HTTP/2 streams open at once on one connection. Each costs the relay
/// about 10 KiB before it sends anything (hyper's stream, tonic's 8 KiB
/// decode buffer, the session's channel); hyper's 200 let 50 connections
/// hold 10,000 streams and 110 MiB (issue 19). An agent uses one stream.
const H2_MAX_STREAMS: u32 = 64;
/// Bytes hyper buffers per HTTP/1 connection (request head and the body
/// read ahead of the handler). hyper's default lets it grow to ~400 KiB,
/// which 200 connections sending bodies at once turned into 80 MiB outside
/// the body budget (issue 19); it also bounds a request head.
const H1_MAX_BUFFER: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown`, then waits up to the grace
/// period for open requests to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    config: &Config,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let waiting = Arc::new(Waiting::default());
    let tls = config
        .tls
        .as_ref()
        .map(|c| tokio_rustls::TlsAcceptor::from(Arc::clone(c)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(H1_MAX_BUFFER)
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    // HTTP/2 pings find dead peers; an unanswered one closes the connection.
    // Flow-control windows bound what a peer can push that nobody reads
    // yet (a body not yet polled, a stream the pre-authentication meter
    // holds back): hyper's 1 MiB per connection let 50 connections park
    // 50 MiB. 256 KiB still moves 25 MB/s per connection at 10 ms.
    builder
        .http2()
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .max_concurrent_streams(H2_MAX_STREAMS)
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.header_read_timeout))
        .keep_alive_timeout(config.header_read_timeout);

    loop {
        // Waiting for a permit before accepting leaves excess connections in
        // the kernel backlog instead of in our memory, unless some open
        // connection can give way to the next one.
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(TryAcquireError::Closed) => break,
            Err(TryAcquireError::NoPermits) if waiting.is_empty() => tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => Some(permit),
                    Err(_) => break,
                },
            },
            Err(TryAcquireError::NoPermits) => None,
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match permit {
            Some(permit) => permit,
            None => tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = make_room(&connections, &waiting) => match permit {
                    Some(permit) => permit,
                    None => break,
                },
            },
        };
        let _ = stream.set_nodelay(true);
        let ticket = waiting.enter();
        let service = connection_service(app.clone(), state.clone(), peer, Arc::clone(&ticket));
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let first_bytes = config.header_read_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let evicted = ticket.evicted.clone();
            let entry = Entry(ticket);
            // hyper's header timer starts with the first byte; a peer that
            // connects and says nothing would hold its slot forever.
            let mut first = [0u8; 1];
            let peek = tokio::time::timeout(first_bytes, stream.peek(&mut first));
            tokio::select! {
                () = evicted.cancelled() => return,
                peeked = peek => match peeked {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                },
            }
            // Errors here are the client's (reset, timeout); nothing to do.
            // Eviction drops the connection: it has no request under way.
            match tls {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(Guarded::new(stream)), service)
                        .into_owned();
                    tokio::select! {
                        () = evicted.cancelled() => {}
                        _ = watcher.watch(connection) => {}
                    }
                }
                Some(acceptor) => {
                    // The handshake gets the same deadline as the headers.
                    let handshake = tokio::time::timeout(first_bytes, acceptor.accept(stream));
                    let stream = tokio::select! {
                        () = evicted.cancelled() => return,
                        handshake = handshake => match handshake {
                            Ok(Ok(stream)) => stream,
                            _ => return,
                        },
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(Guarded::new(stream)), service)
                        .into_owned();
                    tokio::select! {
                        () = evicted.cancelled() => {}
                        _ = watcher.watch(connection) => {}
                    }
                }
            }
            drop(entry);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(
                grace = ?config.shutdown_grace,
                "grace period exceeded; requests still open will fail as the store closes"
            );
        }
    }
}

/// A permit for a newcomer while every slot is taken: one freed meanwhile,
/// or the one the oldest waiting connection gives back when evicted.
/// `None` if the semaphore is closed.
async fn make_room(
    connections: &Arc<Semaphore>,
    waiting: &Waiting,
) -> Option<OwnedSemaphorePermit> {
    match connections.clone().try_acquire_owned() {
        Ok(permit) => return Some(permit),
        Err(TryAcquireError::Closed) => return None,
        Err(TryAcquireError::NoPermits) => {}
    }
    // If every waiting connection has started a request since, none gives
    // way and the newcomer waits for a slot like before.
    if waiting.evict_oldest() {
        tracing::debug!(
            "connection limit reached: the oldest connection without a request gave way"
        );
    }
    connections.clone().acquire_owned().await.ok()
}

/// A connection's standing in [`Waiting`].
const WAITING: u8 = 0;
const STARTED: u8 = 1;
const EVICTED: u8 = 2;

/// Open connections that have not yet brought a request to the router,
/// oldest first: the ones that give way at the connection bound.
#[derive(Default)]
struct Waiting {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Ticket>>>,
}

impl Waiting {
    fn enter(self: &Arc<Self>) -> Arc<Ticket> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let ticket = Arc::new(Ticket {
            id,
            state: AtomicU8::new(WAITING),
            evicted: CancellationToken::new(),
            waiting: Arc::downgrade(self),
        });
        self.lock().insert(id, Arc::clone(&ticket));
        ticket
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Evicts the oldest connection still without a request; `false` if
    /// there is none.
    fn evict_oldest(&self) -> bool {
        loop {
            let Some((_, ticket)) = self.lock().pop_first() else {
                return false;
            };
            // A request may have arrived on it just now: then it stays.
            if ticket
                .state
                .compare_exchange(WAITING, EVICTED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                ticket.evicted.cancel();
                return true;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Ticket>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's entry in [`Waiting`].
struct Ticket {
    id: u64,
    state: AtomicU8,
    /// Cancelled when the connection must give way.
    evicted: CancellationToken,
    waiting: std::sync::Weak<Waiting>,
}

impl Ticket {
    /// A request reached the router: this connection no longer gives way.
    /// `false` if it was evicted first (the request must not start).
    fn start(&self) -> bool {
        match self.state.load(Ordering::SeqCst) {
            STARTED => true,
            EVICTED => false,
            _ => match self.state.compare_exchange(
                WAITING,
                STARTED,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    self.leave();
                    true
                }
                Err(now) => now == STARTED,
            },
        }
    }

    fn leave(&self) {
        if let Some(waiting) = self.waiting.upgrade() {
            waiting.lock().remove(&self.id);
        }
    }
}

/// Held by a connection's task: however the connection ends, its entry
/// leaves [`Waiting`].
struct Entry(Arc<Ticket>);

impl Drop for Entry {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The per-connection service: the router, with the peer address in every
/// request's extensions for `ConnectInfo`. A request that arrives on a
/// connection just evicted is answered 503 without reaching the router.
fn connection_service(
    app: Router,
    state: AppState,
    peer: SocketAddr,
    ticket: Arc<Ticket>,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        let started = ticket.start();
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        let state = state.clone();
        async move {
            if !started {
                return Ok(crate::error::ApiError::unavailable().into_response());
            }
            match crate::tunnel::front(&state, peer, request.map(axum::body::Body::new)).await {
                Ok(response) => Ok(response),
                Err(request) => app.oneshot(request).await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_connection_without_a_request_gives_way() {
        let waiting = Arc::new(Waiting::default());
        let (first, second, third) = (waiting.enter(), waiting.enter(), waiting.enter());
        assert!(first.start(), "a request on the oldest connection");
        assert!(waiting.evict_oldest());
        assert!(
            !first.evicted.is_cancelled(),
            "a connection with a request stays"
        );
        assert!(second.evicted.is_cancelled());
        assert!(!second.start(), "a request after eviction does not start");
        // A connection that ends leaves the list.
        drop(Entry(third));
        assert!(waiting.is_empty());
        assert!(!waiting.evict_oldest());
    }
}
