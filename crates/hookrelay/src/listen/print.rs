//! What `listen` prints: one line per attempt,
//! `time  event-type  id  method path -> status [ms] (attempt n)`, or with
//! `--print-json` one JSON object per attempt, the event included.

use serde_json::{json, Value};

use super::relay::Access;

/// One attempt (or a skipped event) to print.
pub(super) struct Line {
    bucket: String,
    /// When the attempt was made (ms), not when the event was received:
    /// a retry shows its own time.
    at_ms: i64,
    event_type: String,
    id: String,
    method: String,
    path: String,
    attempt: Option<u32>,
    status: Option<u16>,
    latency_ms: u128,
    error: Option<String>,
    /// The event as the relay gave it, for `--print-json`.
    event: Value,
}

impl Line {
    fn of_event(bucket: &str, event: &Value) -> Self {
        let text = |f: &str| event[f].as_str().unwrap_or_default().to_owned();
        let query = text("query");
        let mut path = text("path");
        if path.is_empty() {
            path.push('/');
        }
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        Line {
            bucket: bucket.to_owned(),
            at_ms: agent::now_ms(),
            event_type: event["eventType"].as_str().unwrap_or("-").to_owned(),
            id: text("id"),
            method: text("method"),
            path,
            attempt: None,
            status: None,
            latency_ms: 0,
            error: None,
            event: event.clone(),
        }
    }

    pub(super) fn attempt(bucket: &str, event: &Value, n: u32, outcome: &forward::Outcome) -> Self {
        Line {
            attempt: Some(n),
            status: outcome.status,
            latency_ms: outcome.latency.as_millis(),
            error: outcome.error.clone(),
            ..Self::of_event(bucket, event)
        }
    }

    pub(super) fn skipped(bucket: &str, event: &Value, why: String) -> Self {
        Line {
            error: Some(format!("skipped: {why}")),
            ..Self::of_event(bucket, event)
        }
    }

    /// A forward made by an agent (agent tokens): the agent reports no
    /// event type, id or attempt number.
    pub(super) fn from_agent(bucket: &str, f: &agent::Forwarded) -> Self {
        Line {
            bucket: bucket.to_owned(),
            at_ms: agent::now_ms(),
            event_type: "-".into(),
            id: "-".into(),
            method: f.method.clone(),
            path: if f.path.is_empty() {
                "/".into()
            } else {
                f.path.clone()
            },
            attempt: None,
            status: f.status,
            latency_ms: f.latency.as_millis(),
            error: f.error.clone(),
            event: Value::Null,
        }
    }

    fn human(&self, with_bucket: bool) -> String {
        let outcome = match (self.status, &self.error) {
            (Some(status), _) => status.to_string(),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        };
        let mut line = format!(
            "{}  {}  {}  {} {} -> {} [{} ms]",
            time_of_day(self.at_ms),
            self.event_type,
            self.id,
            self.method,
            self.path,
            outcome,
            self.latency_ms
        );
        if let Some(n) = self.attempt {
            line.push_str(&format!(" (attempt {n})"));
        }
        if with_bucket {
            line = format!("[{}] {line}", self.bucket);
        }
        line
    }

    fn json(&self) -> Value {
        json!({
            "time": self.at_ms, "bucket": self.bucket, "attempt": self.attempt,
            "status": self.status, "latencyMs": self.latency_ms as u64, "error": self.error,
            "event": self.event,
        })
    }
}

/// Prints lines as they come until every sender is gone.
pub(super) async fn run(
    mut lines: tokio::sync::mpsc::Receiver<Line>,
    as_json: bool,
    with_bucket: bool,
) {
    while let Some(line) = lines.recv().await {
        if as_json {
            crate::outln!("{}", line.json());
        } else {
            crate::outln!("{}", line.human(with_bucket));
        }
    }
}

/// The first line of each pair, on stderr so stdout stays one line (or one
/// JSON object) per event.
pub(super) fn banner(bucket: &str, forward: &str, group: &str, access: Access) {
    let how = match access {
        Access::Events => "every event once",
        Access::AgentOnly => "agent token: one delivery per internal output",
    };
    eprintln!("forwarding {bucket} to {forward} ({how}; group {group}; Ctrl-C to stop)");
}

/// `HH:MM:SS` (UTC) of a time in ms.
fn time_of_day(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_type_id_request_answer_and_attempt() {
        let event = json!({"id": "evt_1", "eventType": "push", "method": "POST", "path": "/x", "query": "a=1"});
        let outcome = forward::Outcome {
            status: Some(200),
            latency: std::time::Duration::from_millis(3),
            ..Default::default()
        };
        let mut line = Line::attempt("prod", &event, 2, &outcome);
        line.at_ms = 3_723_000;
        assert_eq!(
            line.human(false),
            "01:02:03  push  evt_1  POST /x?a=1 -> 200 [3 ms] (attempt 2)"
        );
        assert!(line.human(true).starts_with("[prod] 01:02:03"));
        assert_eq!(line.json()["event"]["id"], "evt_1");
        assert_eq!(line.json()["attempt"], 2);
    }
}
