//! Error reporting to Sentry when `SENTRY_DSN` is set (DESIGN §3.6): panics,
//! and every `error!` the relay logs — 5xx answers, store failures — become
//! Sentry events tagged with the release and environment.
//!
//! What leaves the machine is scrubbed first ([`scrub`]): no request data
//! (bodies, headers, query strings, cookies), no user or client address, no
//! breadcrumbs, and any token, bearer string or signing secret that a
//! message might carry is masked. The libraries log neither bodies nor
//! secrets in the first place; the scrubber is the second wall.
//!
//! Envelopes are posted by [`PostTransport`] from a thread of its own, over
//! the relay's existing HTTP client (the crate's bundled transport would
//! bring a second reqwest and native-tls), through a bounded queue: a burst
//! of errors drops reports rather than holding memory or slowing requests.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sentry::protocol::{Event, Value};
use sentry::types::Dsn;
use sentry::{ClientOptions, Envelope, Transport};

/// Reports waiting to be posted; more are dropped (and counted in the log).
const QUEUE: usize = 64;

/// How long one post may take: Sentry is not on any request's path.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for queued reports.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// Starts reporting to `dsn`; the guard flushes and stops it when dropped.
pub(crate) fn init(dsn: &str) -> anyhow::Result<sentry::ClientInitGuard> {
    let dsn: Dsn = dsn.parse().context("SENTRY_DSN is not a valid DSN")?;
    let transport = Arc::new(PostTransport::start(&dsn)?);
    let environment = std::env::var("SENTRY_ENVIRONMENT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "production".to_owned());
    let mut options = ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = sentry::release_name!();
    options.environment = Some(environment.into());
    options.send_default_pii = false;
    options.max_breadcrumbs = 0;
    options.shutdown_timeout = FLUSH_GRACE;
    options.before_send = Some(Arc::new(|event| Some(scrub(event))));
    options.transport = Some(Arc::new(transport));
    Ok(sentry::init(options))
}

/// The tracing layer that turns `error!` events into Sentry events and
/// ignores every other level.
pub(crate) fn layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    sentry::integrations::tracing::ErrorLayer::new()
        .with_filter(tracing_subscriber::filter::LevelFilter::ERROR)
}

/// Removes what must never leave the machine.
pub(crate) fn scrub(mut event: Event<'static>) -> Event<'static> {
    event.request = None;
    event.user = None;
    event.breadcrumbs = Default::default();
    event.server_name = None;
    if let Some(message) = event.message.take() {
        event.message = Some(mask(&message));
    }
    if let Some(entry) = event.logentry.as_mut() {
        entry.message = mask(&entry.message);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = exception.value.take() {
            exception.value = Some(mask(&value));
        }
    }
    for value in event.extra.values_mut() {
        mask_value(value);
    }
    for context in event.contexts.values_mut() {
        if let sentry::protocol::Context::Other(map) = context {
            for value in map.values_mut() {
                mask_value(value);
            }
        }
    }
    for value in event.tags.values_mut() {
        *value = mask(value);
    }
    event
}

fn mask_value(value: &mut Value) {
    match value {
        Value::String(s) => *s = mask(s),
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        Value::Object(map) => map.values_mut().for_each(mask_value),
        _ => {}
    }
}

/// Masks, word by word, what looks like a credential: a token
/// (`tok_….…`), whatever follows `Bearer`/`Basic`, provider signing secrets
/// (`whsec_…`), `key=value` pairs naming a secret, and the query string of
/// any URL.
pub(crate) fn mask(text: &str) -> String {
    let mut out = Vec::new();
    let mut after_scheme = false;
    for word in text.split(' ') {
        let lower = word.to_ascii_lowercase();
        let masked = if after_scheme
            || lower.contains("tok_") && word.contains('.')
            || lower.starts_with("whsec_")
            || lower.starts_with("sk_")
            || is_secret_pair(&lower)
        {
            "***".to_owned()
        } else if word.contains("://") && word.contains('?') {
            let (url, _) = word.split_once('?').unwrap_or((word, ""));
            format!("{url}?***")
        } else {
            word.to_owned()
        };
        after_scheme = matches!(lower.as_str(), "bearer" | "basic");
        out.push(masked);
    }
    out.join(" ")
}

fn is_secret_pair(lower: &str) -> bool {
    const NAMES: [&str; 6] = ["secret", "token", "password", "authorization", "key", "dsn"];
    lower
        .split_once(['=', ':'])
        .is_some_and(|(name, value)| !value.is_empty() && NAMES.iter().any(|n| name.contains(n)))
}

/// Posts envelopes to the DSN's envelope endpoint from its own thread.
pub(crate) struct PostTransport {
    queue: SyncSender<Envelope>,
    /// Reports queued or being posted, to flush on shutdown.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl PostTransport {
    fn start(dsn: &Dsn) -> anyhow::Result<PostTransport> {
        let (queue, rx) = sync_channel(QUEUE);
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let url = dsn.envelope_api_url().to_string();
        let auth = dsn
            .to_auth(Some(concat!("hookrelay/", env!("CARGO_PKG_VERSION"))))
            .to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the Sentry transport")?;
        let done = pending.clone();
        std::thread::Builder::new()
            .name("sentry-transport".into())
            .spawn(move || runtime.block_on(post_loop(rx, url, auth, done)))
            .context("starting the Sentry transport thread")?;
        Ok(PostTransport { queue, pending })
    }
}

async fn post_loop(
    rx: Receiver<Envelope>,
    url: String,
    auth: String,
    pending: Arc<(Mutex<usize>, Condvar)>,
) {
    let client = reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .build()
        .unwrap_or_default();
    // `recv` blocks this thread, which is the transport's alone.
    while let Ok(envelope) = rx.recv() {
        let mut body = Vec::new();
        if envelope.to_writer(&mut body).is_ok() {
            let sent = client
                .post(&url)
                .header("x-sentry-auth", &auth)
                .header("content-type", "application/x-sentry-envelope")
                .body(body)
                .send()
                .await;
            if let Err(err) = sent {
                // Not `error!`: that would report the failure to report.
                tracing::warn!(%err, "could not send an error report to Sentry");
            }
        }
        let (count, changed) = &*pending;
        if let Ok(mut n) = count.lock() {
            *n = n.saturating_sub(1);
            changed.notify_all();
        }
    }
}

impl Transport for PostTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let (count, _) = &*self.pending;
        if let Ok(mut n) = count.lock() {
            *n += 1;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(envelope)
        {
            if let Ok(mut n) = count.lock() {
                *n = n.saturating_sub(1);
            }
            tracing::warn!("error report dropped: the Sentry queue is full");
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (count, changed) = &*self.pending;
        let Ok(mut n) = count.lock() else {
            return false;
        };
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = match changed.wait_timeout(n, left) {
                Ok((n, _)) => n,
                Err(_) => return false,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked() {
        let cases = [
            ("token tok_abc.s3cr3t refused", "token *** refused"),
            ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
            ("got Basic dXNlcjpwYXNz here", "got Basic *** here"),
            (
                "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "secret ***",
            ),
            (
                "posting https://h/x?token=abc&a=1 failed",
                "posting https://h/x?*** failed",
            ),
            ("password=hunter2 in config", "*** in config"),
            (
                "store unavailable: connection refused",
                "store unavailable: connection refused",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(mask(input), expected, "{input}");
        }
    }

    #[test]
    fn request_user_and_breadcrumbs_never_leave() {
        let mut event = Event {
            message: Some("request failed with Bearer tok_a.b".into()),
            request: Some(sentry::protocol::Request {
                query_string: Some("token=abc".into()),
                data: Some("{\"body\":1}".into()),
                ..Default::default()
            }),
            user: Some(sentry::protocol::User {
                ip_address: Some(sentry::protocol::IpAddress::Auto),
                ..Default::default()
            }),
            server_name: Some("host".into()),
            ..Default::default()
        };
        event
            .extra
            .insert("query".into(), Value::String("x https://a/b?c=d".into()));
        let scrubbed = scrub(event);
        assert!(scrubbed.request.is_none() && scrubbed.user.is_none());
        assert!(scrubbed.server_name.is_none());
        assert_eq!(
            scrubbed.message.as_deref(),
            Some("request failed with Bearer ***")
        );
        assert_eq!(
            scrubbed.extra["query"],
            Value::String("x https://a/b?***".into())
        );
    }
}
