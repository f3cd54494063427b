//! The outbound HTTP request of a delivery attempt: build the target URL and
//! headers from an event and an output, send it, and judge the answer. Used
//! by the agent binary (forwarding to internal outputs and `--destination`,
//! [`EgressPolicy::AllowAll`]) and by the server (delivering public outputs
//! itself, [`EgressPolicy::PublicOnly`] unless `allow_private_destinations`).
//!
//! May depend on `reqwest` (rustls), tokio and small crates; nothing of ours,
//! so the agent does not pull in the server's dependencies. No logging: the
//! caller logs an [`Outcome`] inside its delivery span, never bodies or
//! header values.
//!
//! # Layout
//! - `client`: [`Forwarder`] and [`Forwarder::send`]; start reading there.
//! - `egress`: the SSRF guard: [`is_public`] and the filtering DNS resolver.
//! - `target`: [`target_url`]. `headers`: [`outbound_headers`].
//! - `retry`: [`verdict`] and [`backoff`].

use std::time::Duration;

use bytes::Bytes;

mod client;
mod egress;
mod headers;
mod retry;
mod target;

pub use client::{Forwarder, MAX_RESPONSE_BODY};
pub use egress::{is_public, NOT_PUBLIC};
pub use headers::outbound_headers;
pub use retry::{backoff, verdict, Verdict, MAX_BACKOFF};
pub use target::target_url;

/// The leading words of an [`Outcome::error`] about the request itself (its
/// method, URL or a header), not about the destination's answer.
pub const INVALID_REQUEST: &str = "invalid outbound request";

/// Errors that no retry can cure: [`verdict`] fails an outcome without a
/// status whose error starts with one of these.
pub const PERMANENT_ERRORS: &[&str] = &[NOT_PUBLIC, INVALID_REQUEST];

/// Which destinations a [`Forwarder`] may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressPolicy {
    /// Any address: the agent, whose outputs are internal by design.
    AllowAll,
    /// Globally reachable unicast addresses only, checked on the addresses
    /// actually dialled (DESIGN §7): the server's own deliveries.
    PublicOnly,
}

/// One outbound request, ready to send. Build `url` with [`target_url`] and
/// `headers` with [`outbound_headers`].
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The event's method, e.g. `POST`.
    pub method: String,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// In order; repeated names are sent repeated. `Host`, `Content-Length`
    /// and hop-by-hop headers are dropped here too. Values are sent byte
    /// for byte, UTF-8 or not.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Sent byte for byte.
    pub body: Bytes,
    /// For the whole attempt: connect, send, status line and headers, and the
    /// body when it is wanted.
    pub timeout: Duration,
}

/// What one attempt came to. `status` is `None` when there was no answer,
/// and then `error` says why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The destination's status code.
    pub status: Option<u16>,
    /// The destination's response headers, in order (values that are not
    /// UTF-8 are converted lossily).
    pub headers: Vec<(String, String)>,
    /// The response body, when wanted: at most [`MAX_RESPONSE_BODY`] bytes.
    pub body: Bytes,
    /// The response body was longer than [`MAX_RESPONSE_BODY`] and `body`
    /// holds only its start.
    pub body_truncated: bool,
    /// From the start of the attempt to the response's headers (or to the
    /// error).
    pub latency: Duration,
    /// Why there is no status, or, beside a status, why the wanted body could
    /// not be read to its end. Never holds header values, bodies or the URL's
    /// query.
    pub error: Option<String>,
}

/// Errors of building a [`Forwarder`] or a target URL. Failures of a send are
/// not errors but [`Outcome`]s.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The URL does not parse as an absolute URL.
    #[error("invalid destination URL: {source}")]
    InvalidUrl {
        #[source]
        source: url::ParseError,
    },
    /// Only `http` and `https` are delivered to.
    #[error("unsupported destination URL scheme {scheme:?}: only http and https")]
    UnsupportedScheme { scheme: String },
    /// An `http(s)` URL without a host.
    #[error("destination URL has no host")]
    MissingHost,
    /// The extra root CA bundle is not valid PEM certificates.
    #[error("invalid root CA certificates: {source}")]
    Certificate {
        #[source]
        source: reqwest::Error,
    },
    /// The extra root CA bundle holds no certificate.
    #[error("no certificate in the root CA bundle")]
    NoCertificates,
    /// The HTTP client could not be built (TLS setup).
    #[error("building the HTTP client failed: {source}")]
    Client {
        #[source]
        source: reqwest::Error,
    },
}
