//! The accept loop: hyper connections (HTTP/1.1 and HTTP/2, in TLS when
//! configured) with a bound on open connections, a header read and TLS
//! handshake timeout against slow clients, and a graceful drain on shutdown.
//!
//! axum's `serve` hides hyper's builder, and we need its timeouts; this is
//! the axum `serve-with-hyper` example with those knobs turned.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::Config;

/// Serves `app` on `listener` until `shutdown`, then waits up to the grace
/// period for open requests to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let tls = config
        .tls
        .as_ref()
        .map(|c| tokio_rustls::TlsAcceptor::from(Arc::clone(c)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    // HTTP/2 pings find dead peers; an unanswered one closes the connection.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.header_read_timeout))
        .keep_alive_timeout(config.header_read_timeout);

    loop {
        // Waiting for a permit before accepting leaves excess connections in
        // the kernel backlog instead of in our memory.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
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
        let _ = stream.set_nodelay(true);
        let service = connection_service(app.clone(), peer);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let first_bytes = config.header_read_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte; a peer that
            // connects and says nothing would hold its slot forever.
            let mut first = [0u8; 1];
            match tokio::time::timeout(first_bytes, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            // Errors here are the client's (reset, timeout); nothing to do.
            match tls {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    // The handshake gets the same deadline as the headers.
                    let handshake = tokio::time::timeout(first_bytes, acceptor.accept(stream));
                    let Ok(Ok(stream)) = handshake.await else {
                        return;
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                }
            }
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

/// The per-connection service: the router, with the peer address in every
/// request's extensions for `ConnectInfo`.
fn connection_service(
    app: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request.map(axum::body::Body::new))
    })
}
