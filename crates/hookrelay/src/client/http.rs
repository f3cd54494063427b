//! The administration API client: one `reqwest` client, the relay's base URL,
//! the bearer token and the acting tenant (DESIGN §3.4), and the translation
//! of the server's `{"error","message"}` answers into [`ApiError`].

use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::ClientArgs;

/// How long to wait for an answer. Long polls (`events list --wait`) add
/// their own wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a non-JSON error body is quoted back: enough to recognise a
/// proxy's error page, not enough to flood the terminal.
const QUOTED_BODY_CHARS: usize = 200;

/// An error answer of the server, printed as `<message> (<code>, HTTP <status>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    /// The machine code (`unauthorized`, `invalid_request`, ...); `None` when
    /// the answer was not hookrelay's JSON (a proxy, another server).
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code}, HTTP {})", self.message, self.status),
            None => write!(f, "{} (HTTP {})", self.message, self.status),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Reads an error answer: hookrelay's `{"error","message"}` or, failing
    /// that, the start of whatever the body was.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Self {
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            let code = json.get("error").and_then(Value::as_str);
            let message = json.get("message").and_then(Value::as_str);
            if let (Some(code), Some(message)) = (code, message) {
                return Self {
                    status,
                    code: Some(super::table::clean(code)),
                    message: super::table::clean(message),
                };
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unexpected answer")
                .to_owned()
        } else {
            let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
            super::table::clean(&quoted)
        };
        Self {
            status,
            code: None,
            message,
        }
    }
}

/// A client of one relay, acting with one token (and, for the admin, on one
/// tenant).
pub(crate) struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    tenant: Option<String>,
}

impl ApiClient {
    /// Checks the base URL and builds the HTTP client.
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = Url::parse(&args.server)
            .with_context(|| format!("--server {:?} is not a URL", args.server))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            anyhow::bail!(
                "--server {:?} must be an http:// or https:// URL",
                args.server
            );
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &args.ca_file {
            for cert in crate::tls::ca_certificates(ca)? {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base,
            token: args.token.clone().filter(|t| !t.is_empty()),
            tenant: args.tenant.clone().filter(|t| !t.is_empty()),
        })
    }

    /// The URL of an API path given as segments; each segment is
    /// percent-encoded, so an id typed by the user cannot change the route.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Keeps a base path (`https://host/relay/`) and drops its trailing `/`.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// [`Self::url`] with query parameters, percent-encoded.
    pub(crate) fn url_with_query(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// `GET` with query parameters; `wait` lengthens the timeout of a long poll.
    pub(crate) async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        wait: Option<Duration>,
    ) -> anyhow::Result<Value> {
        let url = self.url_with_query(segments, query);
        self.call(Method::GET, url, None, wait).await
    }

    /// A request with an optional JSON body. Answers `Value::Null` for `204`.
    pub(crate) async fn send(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.call(method, self.url(segments), body, None).await
    }

    /// A request to a URL made with [`Self::url_with_query`].
    pub(crate) async fn send_url(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.call(method, url, body, None).await
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        wait: Option<Duration>,
    ) -> anyhow::Result<Value> {
        let timeout = REQUEST_TIMEOUT + wait.unwrap_or_default();
        let mut request = self.http.request(method, url.clone()).timeout(timeout);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header("x-hookrelay-tenant", tenant);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| unreachable_error(&self.base, err, timeout))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| unreachable_error(&self.base, err, timeout))?;
        if !status.is_success() {
            let mut err = ApiError::from_answer(status.as_u16(), &bytes);
            if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
                err.message
                    .push_str("; no token was given: pass --token or set HOOKRELAY_TOKEN");
            }
            return Err(err.into());
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{url} answered HTTP {} with a body that is not JSON: is --server a hookrelay server?",
                status.as_u16()
            )
        })
    }
}

/// A transport failure, worded for the person who typed `--server`.
fn unreachable_error(base: &Url, err: reqwest::Error, timeout: Duration) -> anyhow::Error {
    let what = if let Some(hint) = crate::tls::hint(&err) {
        format!("cannot connect to the relay at {base}: {hint}")
    } else if err.is_timeout() {
        format!(
            "the relay at {base} did not answer within {} s",
            timeout.as_secs()
        )
    } else if err.is_connect() {
        format!(
            "cannot connect to the relay at {base} (is it running? set --server or HOOKRELAY_URL)"
        )
    } else {
        format!("request to the relay at {base} failed")
    };
    anyhow::Error::new(err).context(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(server: &str) -> anyhow::Result<ApiClient> {
        ApiClient::new(&ClientArgs {
            server: server.to_owned(),
            token: None,
            tenant: None,
            ca_file: None,
            json: false,
        })
    }

    #[test]
    fn hookrelay_errors_render_as_documented() {
        let err =
            ApiError::from_answer(404, br#"{"error":"not_found","message":"no bucket bkt_x"}"#);
        assert_eq!(err.to_string(), "no bucket bkt_x (not_found, HTTP 404)");
    }

    #[test]
    fn other_errors_quote_the_body_or_the_reason() {
        assert_eq!(
            ApiError::from_answer(502, b"").to_string(),
            "Bad Gateway (HTTP 502)"
        );
        let long = "x".repeat(1000);
        let err = ApiError::from_answer(500, format!("<h1>{long}</h1>").as_bytes());
        assert_eq!(err.code, None);
        assert_eq!(err.message.chars().count(), QUOTED_BODY_CHARS);
        let err = ApiError::from_answer(400, b"bad\x1b[2Jthing");
        assert_eq!(err.message, "bad\\u{1b}[2Jthing");
    }

    #[test]
    fn urls_encode_segments_and_keep_base_paths() {
        let api = client("http://relay.example:8080").unwrap();
        assert_eq!(
            api.url(&["v1", "buckets", "a/../b c"]).as_str(),
            "http://relay.example:8080/v1/buckets/a%2F..%2Fb%20c"
        );
        let api = client("https://relay.example/base/").unwrap();
        assert_eq!(
            api.url(&["v1", "tokens"]).as_str(),
            "https://relay.example/base/v1/tokens"
        );
    }

    #[test]
    fn queries_are_encoded() {
        let api = client("http://h:1").unwrap();
        let query = [("bucket", "a&b".to_owned()), ("limit", "5".to_owned())];
        assert_eq!(
            api.url_with_query(&["v1", "events"], &query).as_str(),
            "http://h:1/v1/events?bucket=a%26b&limit=5"
        );
    }

    #[test]
    fn bad_server_urls_are_refused() {
        assert!(client("relay.example:8080").is_err());
        assert!(client("ftp://relay").is_err());
        assert!(client("not a url").is_err());
    }
}
