//! The agent's HTTP/2 server on the tunnel connection: each request from
//! the relay is sent to the destination over a keep-alive pool (HTTP/1.1,
//! or HTTP/1.1 over TLS for an `https://` destination, verified against the
//! system's roots or `--destination-ca-file`) and its answer streamed back. An extended CONNECT (RFC 8441) becomes an
//! HTTP/1.1 upgrade at the destination, and the two upgraded streams are
//! joined.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;

use crate::headers::{set_upgrade, strip_hop_by_hop};
use crate::stream::BoxIo;
use crate::{CONNECTION_WINDOW, KEEP_ALIVE, MAX_CONCURRENT_STREAMS, STREAM_WINDOW};

type Body = BoxBody<Bytes, hyper::Error>;

/// Idle keep-alive connections kept to the destination: enough for the
/// 64 concurrent requests of the benchmark without reconnecting.
const POOL_IDLE_PER_HOST: usize = 64;

/// Where the agent sends what arrives: `http(s)://host:port[/base]`.
#[derive(Clone)]
pub struct Destination {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Prepended to every request's path; no trailing slash.
    base: String,
    /// How an `https://` destination's certificate is checked (for
    /// `http://`, a configuration that trusts nothing and is never used).
    /// Built once here: loading the system's roots takes milliseconds, and
    /// the agent reconnects with the same destination.
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base)
    }
}

impl Destination {
    /// Parses `--destination`, `http://` or `https://`; an `https://`
    /// destination's certificate is checked against `ca_pem`'s
    /// certificates when given (a local service's own CA), else the
    /// system's roots. Nothing skips the check: a tunnel that forwards to
    /// a service it cannot authenticate would hand it the visitors'
    /// credentials.
    pub fn parse(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid destination {url:?}: {e}"))?;
        let scheme = match uri.scheme() {
            Some(s) if *s == http::uri::Scheme::HTTP || *s == http::uri::Scheme::HTTPS => s.clone(),
            _ => {
                return Err(format!(
                    "the destination {url:?} must be an http:// or https:// URL"
                ))
            }
        };
        let tls = match (scheme == http::uri::Scheme::HTTPS, ca_pem) {
            (true, ca) => proto::link::client_tls(ca)?,
            (false, Some(_)) => {
                return Err("--destination-ca-file is for an https:// destination".into())
            }
            (false, None) => plain_only()?,
        };
        if uri.query().is_some() {
            return Err(format!("the destination {url:?} must not have a query"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("the destination {url:?} has no host"))?;
        Ok(Destination {
            scheme,
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
            tls,
        })
    }

    /// The destination URL of a request for `path_and_query`.
    fn uri_for(
        &self,
        path_and_query: Option<&http::uri::PathAndQuery>,
    ) -> Result<Uri, http::Error> {
        let tail = path_and_query.map_or("/", |p| p.as_str());
        let tail = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{tail}", self.base))
            .build()
    }
}

struct Forwarder {
    destination: Destination,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

/// Serves the relay's requests on `io` until the relay closes it, it fails,
/// or `shutdown` (then open requests finish first).
pub(crate) async fn serve(
    io: BoxIo,
    destination: &Destination,
    shutdown: &CancellationToken,
) -> Result<(), hyper::Error> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(rustls::ClientConfig::clone(&destination.tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .build(connector);
    let forwarder = Arc::new(Forwarder {
        destination: destination.clone(),
        client,
    });
    let service = hyper::service::service_fn(move |req| {
        let forwarder = Arc::clone(&forwarder);
        async move { Ok::<_, Infallible>(forwarder.handle(req).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .keep_alive_interval(KEEP_ALIVE)
        .keep_alive_timeout(proto::SILENCE_LIMIT)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        end = conn.as_mut() => end,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// A TLS configuration that trusts nothing, for the connector of an
/// `http://` destination, which never starts TLS.
fn plain_only() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

impl Forwarder {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let upgrade = (req.method() == Method::CONNECT)
            .then(|| {
                req.extensions()
                    .get::<hyper::ext::Protocol>()
                    .map(|p| p.as_str().to_owned())
            })
            .flatten();
        let answer = match upgrade {
            Some(protocol) => self.upgrade(req, &protocol).await,
            None if req.method() == Method::CONNECT => Err("plain CONNECT is not forwarded".into()),
            None => self.forward(req).await,
        };
        answer.unwrap_or_else(|message| {
            tracing::debug!(%message, "destination failed");
            bad_gateway(&message)
        })
    }

    /// The request as the destination gets it: its URL, `Host` as the
    /// relay chose (the visitor's or the tunnel's `hostHeader`), HTTP/1.1.
    fn outbound(&self, mut parts: http::request::Parts) -> Result<http::request::Parts, String> {
        let host = parts.uri.authority().map(|a| a.as_str().to_owned());
        parts.uri = self
            .destination
            .uri_for(parts.uri.path_and_query())
            .map_err(|e| e.to_string())?;
        parts.version = Version::HTTP_11;
        parts.extensions = http::Extensions::new();
        if let Some(host) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
            parts.headers.insert(http::header::HOST, host);
        }
        Ok(parts)
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Body>, String> {
        let (parts, body) = req.into_parts();
        let parts = self.outbound(parts)?;
        let response = self
            .client
            .request(Request::from_parts(parts, body.boxed()))
            .await
            .map_err(|e| format!("the destination did not answer: {e}"))?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed()))
    }

    async fn upgrade(
        &self,
        mut req: Request<Incoming>,
        protocol: &str,
    ) -> Result<Response<Body>, String> {
        let from_relay = hyper::upgrade::on(&mut req);
        let (parts, _) = req.into_parts();
        let mut parts = self.outbound(parts)?;
        parts.method = Method::GET;
        set_upgrade(&mut parts.headers, protocol);
        let mut response = self
            .client
            .request(Request::from_parts(parts, empty()))
            .await
            .map_err(|e| format!("the destination did not answer: {e}"))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            return Ok(Response::from_parts(parts, body.boxed()));
        }
        let from_destination = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(relay), Ok(destination)) = tokio::join!(from_relay, from_destination) else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(
                &mut TokioIo::new(relay),
                &mut TokioIo::new(destination),
            )
            .await;
        });
        let mut headers = response.headers().clone();
        strip_hop_by_hop(&mut headers);
        let mut answer = Response::new(empty());
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// The destination could not be reached or failed mid-answer.
fn bad_gateway(message: &str) -> Response<Body> {
    let body = format!(
        "{{\"error\":\"destination_unreachable\",\"message\":{}}}",
        json_string(message)
    );
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON string literal of `text` (quotes, backslashes and controls escaped).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_keep_their_base_path_and_refuse_the_rest() {
        let d = Destination::parse("http://127.0.0.1:3000/base/", None).unwrap();
        let pq: http::uri::PathAndQuery = "/x/y?a=1".parse().unwrap();
        assert_eq!(
            d.uri_for(Some(&pq)).unwrap(),
            "http://127.0.0.1:3000/base/x/y?a=1"
        );
        assert_eq!(d.uri_for(None).unwrap(), "http://127.0.0.1:3000/base/");
        assert!(Destination::parse("ftp://x", None).is_err());
        assert!(Destination::parse("http://x/?a=1", None).is_err());
        assert!(Destination::parse("localhost:3000", None).is_err());
        assert!(Destination::parse("http://x", Some(b"pem")).is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
