//! One `BUCKET=URL` pair of a `listen` that reads the bucket's events
//! itself: long-polls `GET /v1/events?bucket=&after=<cursor>&wait=`, sends
//! each event to its URL (retrying as the relay's own delivery does), and
//! saves the cursor once the event is handled. Each event of the bucket is
//! thus forwarded once (at least once: a crash between forward and save
//! sends it again), whatever outputs the bucket has, and a restart resumes
//! from the cursor.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::cursor::CursorFile;
use super::{Line, Relay};

/// A long poll waits this long for the next event (the relay's maximum is
/// 60 s; shorter keeps a half-open connection from lingering).
const WAIT_SECONDS: u64 = 25;
/// Events fetched per poll.
const PAGE: usize = 100;
/// One forward's whole attempt: connect, send, answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per event, the first included; then the event is reported failed
/// and `listen` moves on (the event stays readable on the relay).
const MAX_ATTEMPTS: u32 = 5;

/// What one pair needs.
pub(super) struct Pair {
    pub(super) bucket: String,
    pub(super) forward: String,
    pub(super) events: Vec<String>,
    pub(super) cursor: CursorFile,
}

/// Runs `pair` until `stop` is cancelled; an event being forwarded when it
/// is finishes first (its retries do not).
pub(super) async fn run(
    relay: &Relay,
    forwarder: &forward::Forwarder,
    pair: Pair,
    lines: tokio::sync::mpsc::Sender<Line>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut cursor = start_cursor(relay, &pair).await?;
    let mut failures = 0u32;
    loop {
        let page = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            page = relay.events_after(&pair.bucket, &cursor, PAGE, WAIT_SECONDS) => page,
        };
        let page = match page {
            Ok(page) => page,
            Err(err) if err.is::<super::Refused>() => return Err(err),
            Err(err) => {
                failures += 1;
                if failures == 1 {
                    tracing::info!(bucket = %pair.bucket, "disconnected from the relay: {err:#}");
                }
                let wait = agent::backoff(failures, 1.0);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        if failures > 0 {
            tracing::info!(bucket = %pair.bucket, "reconnected to the relay");
            failures = 0;
        }
        for event in page {
            let Some(id) = event["id"].as_str().map(str::to_owned) else {
                continue;
            };
            if wanted(&pair.events, &event)
                && !deliver(forwarder, &pair, &event, &lines, &stop).await
            {
                // Stopped between attempts: the cursor stays before this
                // event, so the next `listen` sends it again.
                return Ok(());
            }
            pair.cursor.save(&id)?;
            cursor = id;
            if stop.is_cancelled() {
                return Ok(());
            }
        }
    }
}

/// Where to begin: the saved cursor, moved up to the bucket's catch-up
/// window if it is older (as an agent group's catch-up does); with no saved
/// cursor, the relay's present.
async fn start_cursor(relay: &Relay, pair: &Pair) -> anyhow::Result<String> {
    let now = relay.server_time_ms().await?;
    let floor = |ms: i64| model::EventId::floor_at(ms).to_string();
    let Some(saved) = pair.cursor.load() else {
        return Ok(floor(now));
    };
    let catchup_ms = relay.catchup_seconds(&pair.bucket).await * 1000;
    let saved_ms = saved
        .parse::<model::EventId>()
        .map(|id| id.ulid().timestamp_ms() as i64)
        .unwrap_or(0);
    if saved_ms < now - catchup_ms {
        tracing::info!(
            bucket = %pair.bucket,
            "resuming from the catch-up window ({} s); older events: `hookrelay events list`",
            catchup_ms / 1000
        );
        return Ok(floor(now - catchup_ms));
    }
    Ok(saved)
}

/// Whether `--events` lets `event` through.
fn wanted(filter: &[String], event: &Value) -> bool {
    filter.is_empty()
        || event["eventType"]
            .as_str()
            .is_some_and(|t| filter.iter().any(|f| f == t))
}

/// Forwards `event` until delivered, failed for good, or out of attempts;
/// false when `stop` came between two attempts.
async fn deliver(
    forwarder: &forward::Forwarder,
    pair: &Pair,
    event: &Value,
    lines: &tokio::sync::mpsc::Sender<Line>,
    stop: &CancellationToken,
) -> bool {
    let outbound = match outbound(&pair.forward, event) {
        Ok(outbound) => outbound,
        Err(why) => {
            let _ = lines.send(Line::skipped(&pair.bucket, event, why)).await;
            return true;
        }
    };
    for attempt in 1..=MAX_ATTEMPTS {
        let outcome = forwarder.send(outbound.clone(), false).await;
        let verdict = forward::verdict(&outcome);
        let _ = lines
            .send(Line::attempt(&pair.bucket, event, attempt, &outcome))
            .await;
        if verdict != forward::Verdict::Retry || attempt == MAX_ATTEMPTS {
            return true;
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(agent::backoff(attempt, 1.0)) => {}
        }
    }
    true
}

/// The request an event becomes: its method, path suffix and query, headers
/// and exact body, sent to `forward`.
fn outbound(forward: &str, event: &Value) -> Result<forward::Outbound, String> {
    let text = |field: &str| event[field].as_str().unwrap_or_default();
    let url = forward::target_url(forward, text("path"), text("query"))
        .map_err(|e| format!("bad --forward URL: {e}"))?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s);
    let body = match (event.get("body"), text("bodyEncoding")) {
        (Some(Value::String(s)), "base64") => b64(s).map_err(|_| "body: bad base64")?,
        (Some(Value::String(s)), _) => s.clone().into_bytes(),
        _ => return Err("nothing stored to forward (ephemeral bucket)".into()),
    };
    let encoded = text("headerEncoding") == "base64";
    let mut headers = Vec::new();
    for (name, value) in event["headers"].as_object().into_iter().flatten() {
        let value = value.as_str().unwrap_or_default();
        let value = if encoded {
            b64(value).map_err(|_| "headers: bad base64")?
        } else {
            value.as_bytes().to_vec()
        };
        headers.push((name.clone(), value));
    }
    Ok(forward::Outbound {
        method: text("method").to_owned(),
        url,
        headers: forward::outbound_headers(&headers, &Default::default()),
        body: body.into(),
        timeout: FORWARD_TIMEOUT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_becomes_the_request_it_was() {
        let event = json!({
            "id": "evt_1", "method": "PUT", "path": "/gh/push", "query": "a=1",
            "headers": {"content-type": "application/json", "host": "relay", "x-a": "b"},
            "body": "/wD+", "bodyEncoding": "base64"
        });
        let out = outbound("http://localhost:3000/hook", &event).unwrap();
        assert_eq!(out.method, "PUT");
        assert_eq!(out.url, "http://localhost:3000/hook/gh/push?a=1");
        assert_eq!(&out.body[..], &[0xff, 0x00, 0xfe]);
        assert!(out.headers.iter().any(|(k, v)| k == "x-a" && v == b"b"));
        assert!(!out.headers.iter().any(|(k, _)| k == "host"));

        let raw = json!({
            "id": "evt_3", "method": "POST", "path": "", "query": "",
            "headers": {"x-raw": "//4=", "x-a": "Yg=="}, "headerEncoding": "base64",
            "body": "", "bodyEncoding": "utf8"
        });
        let out = outbound("http://localhost:3000", &raw).unwrap();
        assert!(out
            .headers
            .iter()
            .any(|(k, v)| k == "x-raw" && v == b"\xff\xfe"));
        assert!(out.headers.iter().any(|(k, v)| k == "x-a" && v == b"b"));

        let ephemeral = json!({"id": "evt_2", "method": "POST", "path": "", "query": ""});
        assert!(outbound("http://localhost:3000", &ephemeral).is_err());
    }

    #[test]
    fn the_events_filter_matches_event_types() {
        let push = json!({"eventType": "push"});
        assert!(wanted(&[], &push));
        assert!(wanted(&["ping".into(), "push".into()], &push));
        assert!(!wanted(&["ping".into()], &push));
        assert!(!wanted(&["ping".into()], &json!({"eventType": null})));
    }
}
