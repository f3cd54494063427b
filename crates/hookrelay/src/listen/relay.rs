//! What `listen` asks the relay: which way it may read a bucket, the
//! bucket's events after a cursor (long-polled), the relay's clock and the
//! bucket's catch-up window.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::Value;

/// The relay refused for good (the token, or the bucket): retrying would
/// get the same answer.
#[derive(Debug)]
pub(super) struct Refused(pub(super) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// How `listen` may receive a bucket with its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// The token may read the bucket's events (admin, tenant, poll).
    Events,
    /// An agent token: deliveries of the bucket's internal outputs only.
    AgentOnly,
}

/// A client of one relay with one bearer token.
#[derive(Clone)]
pub(super) struct Relay {
    http: reqwest::Client,
    base: url::Url,
    bearer: String,
}

/// Connecting and each request but a long poll's wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Relay {
    pub(super) fn new(
        server: &str,
        bearer: String,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let base = url::Url::parse(server).with_context(|| format!("{server:?} is not a URL"))?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("hookrelay-listen/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_file {
            for cert in crate::tls::ca_certificates(ca)? {
                http = http.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: http.build().context("cannot set up the HTTP client")?,
            base,
            bearer,
        })
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn get(&self, url: url::Url, wait: Duration) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.bearer)
            .timeout(REQUEST_TIMEOUT + wait)
            .send()
            .await
            .map_err(|e| {
                let what = match crate::tls::hint(&e) {
                    Some(hint) => format!("cannot reach the relay at {}: {hint}", self.base),
                    None => format!("cannot reach the relay at {}", self.base),
                };
                anyhow::Error::new(e).context(what)
            })?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Whether the token may read `bucket`'s events, or is an agent token.
    pub(super) async fn access(&self, bucket: &str) -> anyhow::Result<Access> {
        let mut url = self.url(&["v1", "events"]);
        url.query_pairs_mut()
            .append_pair("bucket", bucket)
            .append_pair("limit", "1");
        match self.get(url, Duration::ZERO).await? {
            (StatusCode::OK, _) => return Ok(Access::Events),
            (StatusCode::NOT_FOUND, _) => {}
            (status, body) => return Err(refused(status, &body).into()),
        }
        // 404: an unknown bucket, or a token that may not read events at
        // all (an agent token), which the same route without a bucket tells.
        let (status, _) = self
            .get(self.url(&["v1", "events"]), Duration::ZERO)
            .await?;
        if status == StatusCode::OK {
            return Err(Refused(format!("no bucket {bucket:?} that this token may read")).into());
        }
        Ok(Access::AgentOnly)
    }

    /// Up to `limit` events of `bucket` after `after`, oldest first, waiting
    /// up to `wait_secs` for the first.
    pub(super) async fn events_after(
        &self,
        bucket: &str,
        after: &str,
        limit: usize,
        wait_secs: u64,
    ) -> anyhow::Result<Vec<Value>> {
        let mut url = self.url(&["v1", "events"]);
        url.query_pairs_mut()
            .append_pair("bucket", bucket)
            .append_pair("after", after)
            .append_pair("limit", &limit.to_string())
            .append_pair("wait", &wait_secs.to_string());
        match self.get(url, Duration::from_secs(wait_secs)).await? {
            (StatusCode::OK, body) => Ok(body["events"].as_array().cloned().unwrap_or_default()),
            (status @ (StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND), body) => {
                Err(refused(status, &body).into())
            }
            (status, body) => anyhow::bail!("the relay answered {status}: {}", message(&body)),
        }
    }

    /// The relay's clock (ms), so a first `listen` starts at the relay's
    /// present whatever this machine's clock says.
    pub(super) async fn server_time_ms(&self) -> anyhow::Result<i64> {
        let (status, body) = self
            .get(self.url(&["api", "health"]), Duration::ZERO)
            .await?;
        body["timestamp"].as_i64().with_context(|| {
            format!(
                "{}/api/health answered {status} without a time: is it a hookrelay server?",
                self.base
            )
        })
    }

    /// The bucket's catch-up window (s); 600, the default, when the token
    /// may not read the bucket's settings (a poll token).
    pub(super) async fn catchup_seconds(&self, bucket: &str) -> i64 {
        match self
            .get(self.url(&["v1", "buckets", bucket]), Duration::ZERO)
            .await
        {
            Ok((StatusCode::OK, body)) => body["catchupSeconds"].as_i64().unwrap_or(600),
            _ => 600,
        }
    }
}

fn message(body: &Value) -> String {
    body["message"].as_str().unwrap_or("no message").to_owned()
}

fn refused(status: StatusCode, body: &Value) -> Refused {
    let hint = if status == StatusCode::UNAUTHORIZED {
        ": check --token (or HOOKRELAY_TOKEN)"
    } else {
        ""
    };
    Refused(format!(
        "the relay refused: {status}: {}{hint}",
        message(body)
    ))
}
