//! The service every path of the tunnel scenario leads to, and the four
//! loads driven through each path: keep-alive GETs on many connections,
//! round trips with one in flight, a new connection per request, and one
//! bulk download. Bodies are counted as they stream, never held.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;

use crate::sender::Samples;

/// The small answer of `GET /hello` (as a typical API response head is
/// what dominates; the body is a few dozen bytes).
const HELLO: &[u8] = b"{\"hello\":\"from the destination\"}\n";

/// The bulk answer is written in chunks of this many zero bytes.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// How long any single request may take before the scenario fails.
const REQUEST_PATIENCE: Duration = Duration::from_secs(120);

/// The destination: `GET /hello` → [`HELLO`]; `GET /bulk/N` → N zero
/// bytes with a `Content-Length`, produced as the reader takes them.
pub(crate) struct Service {
    pub(crate) port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = Either<Full<Bytes>, Zeros>;

impl Service {
    pub(crate) async fn spawn() -> anyhow::Result<Service> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            Ok::<_, Infallible>(answer(req.uri().path()))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Service { port, task })
    }
}

fn answer(path: &str) -> hyper::Response<Answer> {
    match path.strip_prefix("/bulk/").map(str::parse::<u64>) {
        Some(Ok(left)) => hyper::Response::new(Either::Right(Zeros { left })),
        Some(Err(_)) => {
            let mut r = hyper::Response::new(Either::Left(Full::new(Bytes::new())));
            *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
            r
        }
        None => hyper::Response::new(Either::Left(Full::new(Bytes::from_static(HELLO)))),
    }
}

/// `left` zero bytes, 64 KiB a frame, with an exact size hint (so the
/// response carries a `Content-Length`, as a file download would).
pub(crate) struct Zeros {
    left: u64,
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Where a visitor goes: `host:port` and the path prefix of the service.
#[derive(Clone)]
pub(crate) struct Public {
    pub(crate) addr: String,
    pub(crate) prefix: String,
}

/// One keep-alive HTTP/1.1 connection of a visitor.
struct Visitor {
    host: String,
    conn: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl Visitor {
    async fn connect(public: &Public) -> anyhow::Result<Visitor> {
        let stream = tokio::net::TcpStream::connect(&public.addr)
            .await
            .with_context(|| format!("connecting to {}", public.addr))?;
        stream.set_nodelay(true)?;
        let (conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(driver);
        Ok(Visitor {
            host: public.addr.clone(),
            conn,
        })
    }

    /// A GET; its status and the body's length, counted as it streams.
    async fn get(&mut self, target: &str, close: bool) -> anyhow::Result<(u16, u64)> {
        let mut request = hyper::Request::get(target).header("host", self.host.as_str());
        if close {
            // The server closes first, so the TIME_WAIT of thousands of
            // short connections is the server's, not the client's ports.
            request = request.header("connection", "close");
        }
        let request = request.body(Empty::new())?;
        let exchange = async {
            self.conn.ready().await?;
            let response = self.conn.send_request(request).await?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut len = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    len += data.len() as u64;
                }
            }
            anyhow::Ok((status, len))
        };
        tokio::time::timeout(REQUEST_PATIENCE, exchange)
            .await
            .with_context(|| format!("GET {target} took over {REQUEST_PATIENCE:?}"))?
    }
}

/// Waits until `GET /hello` through `public` answers 200 (a tunnel that
/// is listening but whose agent has not connected yet answers otherwise).
pub(crate) async fn wait_ready(public: &Public, patience: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    let target = format!("{}/hello", public.prefix);
    loop {
        let attempt = async {
            let mut v = Visitor::connect(public).await?;
            v.get(&target, true).await
        };
        let last = match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok((200, _))) => return Ok(()),
            Ok(Ok((status, _))) => format!("status {status}"),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "no answer in 2 s".to_owned(),
        };
        if Instant::now() > deadline {
            bail!(
                "{} did not answer 200 within {patience:?}: {last}",
                public.addr
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `connections` visitors GET `/hello` back to back for `duration`:
/// completed requests per second, and how many did not answer 200.
pub(crate) async fn keep_alive(
    public: &Public,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(f64, u64)> {
    let target = format!("{}/hello", public.prefix);
    let done = Arc::new(AtomicU64::new(0));
    let mut visitors = Vec::with_capacity(connections);
    for _ in 0..connections {
        visitors.push(Visitor::connect(public).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for mut v in visitors {
        let (target, done) = (target.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let (status, _) = v.get(&target, false).await?;
                if status != 200 {
                    errors += 1;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(errors)
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    Ok((rate, errors))
}

/// `n` GETs one after the other on one connection: their round trips.
pub(crate) async fn round_trips(public: &Public, n: u64) -> anyhow::Result<Samples> {
    let target = format!("{}/hello", public.prefix);
    let mut v = Visitor::connect(public).await?;
    let mut samples = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let at = Instant::now();
        let (status, _) = v.get(&target, false).await?;
        samples.push(at.elapsed());
        if status != 200 {
            bail!("GET {target} answered {status}");
        }
    }
    Ok(Samples::new(samples))
}

/// `n` GETs, each on a new connection, `concurrency` at a time: requests
/// per second.
pub(crate) async fn fresh_connections(
    public: &Public,
    n: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let target = format!("{}/hello", public.prefix);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (public, target, next) = (public.clone(), target.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let mut v = Visitor::connect(&public).await?;
                let (status, _) = v.get(&target, true).await?;
                if status != 200 {
                    bail!("GET {target} on a new connection answered {status}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// One GET of `bytes` bytes: MiB per second.
pub(crate) async fn bulk(public: &Public, bytes: u64) -> anyhow::Result<f64> {
    let target = format!("{}/bulk/{bytes}", public.prefix);
    let mut v = Visitor::connect(public).await?;
    let started = Instant::now();
    let (status, len) = v.get(&target, false).await?;
    let seconds = started.elapsed().as_secs_f64();
    if status != 200 || len != bytes {
        bail!("GET {target} answered {status} with {len} bytes");
    }
    Ok(bytes as f64 / (1024.0 * 1024.0) / seconds)
}
