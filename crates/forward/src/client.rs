//! [`Forwarder`]: one shared HTTP client (connection pool, rustls) that sends
//! delivery attempts and turns whatever happens into an [`Outcome`].

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, Certificate, Method, Url};

use crate::egress::{self, NotPublic, PublicResolver, NOT_PUBLIC};
use crate::{headers, target, EgressPolicy, ForwardError, Outbound, Outcome, INVALID_REQUEST};

/// The most of a response body kept in an [`Outcome`]; the rest is not read.
/// Enough for any webhook reply worth returning to a `wait` caller, small
/// enough that a hostile destination costs at most this per attempt.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Sends delivery attempts. Cheap to clone (the pool is shared); build one
/// per process and policy.
///
/// Redirects are never followed (a 3xx is the answer, and [`crate::verdict`]
/// fails it), and proxies from the environment (`HTTP_PROXY`, …) are
/// ignored, so the request goes to the URL's host and nowhere else. TLS uses
/// rustls with the system's root certificates, plus any given to
/// [`Forwarder::with_root_certificates`].
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    policy: EgressPolicy,
}

impl Forwarder {
    /// A forwarder trusting the system's root certificates.
    pub fn new(policy: EgressPolicy) -> Result<Self, ForwardError> {
        Self::build(policy, Vec::new())
    }

    /// A forwarder that also trusts the certificates in `pem` (one or more
    /// PEM `CERTIFICATE` blocks), for destinations behind a private CA.
    pub fn with_root_certificates(policy: EgressPolicy, pem: &[u8]) -> Result<Self, ForwardError> {
        let certs = Certificate::from_pem_bundle(pem)
            .map_err(|source| ForwardError::Certificate { source })?;
        if certs.is_empty() {
            return Err(ForwardError::NoCertificates);
        }
        Self::build(policy, certs)
    }

    fn build(policy: EgressPolicy, roots: Vec<Certificate>) -> Result<Self, ForwardError> {
        let mut builder = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy();
        for cert in roots {
            builder = builder.add_root_certificate(cert);
        }
        if policy == EgressPolicy::PublicOnly {
            builder = builder.dns_resolver(Arc::new(PublicResolver));
        }
        let client = builder
            .build()
            .map_err(|source| ForwardError::Client { source })?;
        Ok(Self { client, policy })
    }

    /// The policy this forwarder enforces.
    pub fn policy(&self) -> EgressPolicy {
        self.policy
    }

    /// Sends one attempt and reports what happened; never panics and never
    /// fails: a request that cannot be sent, a refused destination, a
    /// connection error or a timeout is an [`Outcome`] with `status: None`
    /// and an `error`. The response body is read (up to
    /// [`MAX_RESPONSE_BODY`]) only when `want_body`, within `req.timeout`.
    ///
    /// The request carries `req.headers` in order (minus `Host`,
    /// `Content-Length` and hop-by-hop headers, which the client sets), plus
    /// `accept: */*` when they have no `Accept` (the HTTP client's default).
    pub async fn send(&self, req: Outbound, want_body: bool) -> Outcome {
        let start = Instant::now();
        let timeout = req.timeout;
        let request = match self.prepare(req) {
            Ok(r) => r,
            Err(error) => return failed(start, error),
        };
        let mut response = match request.timeout(timeout).send().await {
            Ok(r) => r,
            Err(e) => return failed(start, describe(&e, timeout)),
        };
        let latency = start.elapsed();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect();
        let mut outcome = Outcome {
            status: Some(status),
            headers,
            latency,
            ..Outcome::default()
        };
        if want_body {
            let mut body = BytesMut::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = MAX_RESPONSE_BODY - body.len();
                        if chunk.len() > room {
                            body.extend_from_slice(&chunk[..room]);
                            outcome.body_truncated = true;
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        outcome.error = Some(format!(
                            "reading the response body: {}",
                            describe(&e, timeout)
                        ));
                        break;
                    }
                }
            }
            outcome.body = body.freeze();
        }
        outcome
    }

    /// Checks and converts `req`; an `Err` is the outcome's error text.
    fn prepare(&self, req: Outbound) -> Result<reqwest::RequestBuilder, String> {
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|_| format!("{INVALID_REQUEST}: method {:?}", req.method))?;
        let url = Url::parse(&req.url)
            .map_err(|e| ForwardError::InvalidUrl { source: e })
            .and_then(|url| target::check_scheme(&url).map(|()| url))
            .map_err(|e| format!("{INVALID_REQUEST}: {e}"))?;
        // IP literals never reach the resolver, so they are judged here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            Some(url::Host::Domain(_)) => None,
            None => return Err(format!("{INVALID_REQUEST}: {}", ForwardError::MissingHost)),
        };
        if let (EgressPolicy::PublicOnly, Some(ip)) = (self.policy, literal) {
            if !egress::is_public(ip) {
                return Err(format!("{NOT_PUBLIC}: {ip}"));
            }
        }

        let mut header_map = HeaderMap::with_capacity(req.headers.len());
        for (name, value) in &req.headers {
            if headers::is_dropped(name) {
                continue;
            }
            let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
                return Err(format!("{INVALID_REQUEST}: header name {name:?}"));
            };
            // The value is never quoted: it may be a credential.
            let Ok(header_value) = HeaderValue::from_bytes(value) else {
                return Err(format!("{INVALID_REQUEST}: value of header {name:?}"));
            };
            header_map.append(header_name, header_value);
        }

        let mut request = self.client.request(method.clone(), url).headers(header_map);
        if !req.body.is_empty() || !bodiless(&method) {
            request = request.body(req.body);
        }
        Ok(request)
    }
}

/// Methods that normally carry no body: sent without one (and without a
/// `Content-Length: 0`) when the event had none.
fn bodiless(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::DELETE,
        Method::CONNECT,
    ]
    .contains(method)
}

fn failed(start: Instant, error: String) -> Outcome {
    Outcome {
        latency: start.elapsed(),
        error: Some(error),
        ..Outcome::default()
    }
}

/// The error text of a failed send: the refusal of the SSRF guard as is, a
/// timeout as such, anything else as its chain of causes, without the URL
/// (its query may hold a token).
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<NotPublic>() {
            return refused.to_string();
        }
        source = e.source();
    }
    if err.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let mut text = if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}
