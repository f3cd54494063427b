//! `hookrelay events list|show|resend`: the cursor-paginated event routes
//! `GET /v1/events`, `GET /v1/events/{id}` and `POST /v1/events/{id}/resend`
//! (DESIGN §3.2). Event fields come from webhook senders, so everything shown
//! goes through [`super::table`]'s escaping.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::http::ApiClient;
use super::table::{
    cell, clean, clean_multiline, render_list, render_object, time_cell, Column, View,
};

/// The server caps a long poll at 60 s (DESIGN §3.2).
const MAX_WAIT_SECONDS: u64 = 60;

/// Verbs on events.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum EventsCommand {
    /// List events, oldest first, after a cursor.
    List {
        /// Only this bucket's events (id or name).
        #[arg(long)]
        bucket: Option<String>,
        /// Start after this event id (the `next` of a previous page).
        #[arg(long)]
        after: Option<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Long-poll up to this many seconds (at most 60) for a first new event.
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_SECONDS))]
        wait: Option<u64>,
    },
    /// Show one event with its headers, body and deliveries.
    Show {
        /// Event id (`evt_...`).
        id: String,
    },
    /// Deliver an event again, to all outputs or one.
    Resend {
        /// Event id (`evt_...`).
        id: String,
        /// Only this output.
        #[arg(long)]
        output: Option<String>,
    },
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("RECEIVED", |v| time_cell(v, "/receivedAt")),
    ("METHOD", |v| cell(v, "/method")),
    ("INTEGRATION", |v| cell(v, "/integration")),
    ("EVENT-TYPE", |v| cell(v, "/eventType")),
    ("VERIFIED", |v| cell(v, "/verified")),
    ("SIZE", |v| {
        body_size(v).map_or_else(|| "-".to_owned(), |n| n.to_string())
    }),
];

const DELIVERY_COLUMNS: &[Column] = &[
    ("OUTPUT", |v| cell(v, "/output")),
    ("GROUP", |v| cell(v, "/group")),
    ("STATE", |v| cell(v, "/state")),
    ("ATTEMPTS", |v| attempts(v).len().to_string()),
    ("LAST-STATUS", |v| {
        attempts(v)
            .last()
            .map_or_else(|| "-".to_owned(), |a| cell(a, "/status"))
    }),
    ("LAST-ERROR", |v| {
        attempts(v)
            .last()
            .map_or_else(|| "-".to_owned(), |a| cell(a, "/error"))
    }),
    ("UPDATED", |v| time_cell(v, "/updatedAt")),
];

fn attempts(delivery: &Value) -> &[Value] {
    delivery
        .get("attempts")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// The query of `GET /v1/events` from the flags given.
pub(crate) fn list_query(
    bucket: Option<&str>,
    after: Option<&str>,
    limit: Option<u32>,
    wait: Option<u64>,
) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(bucket) = bucket {
        query.push(("bucket", bucket.to_owned()));
    }
    if let Some(after) = after {
        query.push(("after", after.to_owned()));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(wait) = wait {
        query.push(("wait", wait.to_string()));
    }
    query
}

/// The body size in bytes: the server's own count if it sends one, else
/// measured from `body` (base64 is 4 characters per 3 bytes).
pub(crate) fn body_size(event: &Value) -> Option<u64> {
    if let Some(size) = ["size", "bodySize"]
        .iter()
        .find_map(|k| event.get(*k)?.as_u64())
    {
        return Some(size);
    }
    let body = event.get("body")?.as_str()?;
    if event.get("bodyEncoding").and_then(Value::as_str) == Some("base64") {
        let chars = body
            .bytes()
            .filter(|b| {
                b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || *b == b'-' || *b == b'_'
            })
            .count() as u64;
        Some(chars * 3 / 4)
    } else {
        Some(body.len() as u64)
    }
}

/// `events show` for people: the event's fields, its headers, its
/// deliveries, then its body. Accepts the event either at the top level or
/// under `"event"`, with `deliveries` beside it or inside it.
pub(crate) fn render_event(answer: &Value) -> String {
    let event = answer
        .get("event")
        .filter(|e| e.is_object())
        .unwrap_or(answer);
    let deliveries = answer
        .get("deliveries")
        .or_else(|| event.get("deliveries"))
        .and_then(Value::as_array);
    let mut fields = event.clone();
    if let Some(map) = fields.as_object_mut() {
        for key in ["headers", "body", "bodyEncoding", "deliveries"] {
            map.remove(key);
        }
        if let Some(size) = body_size(event) {
            map.entry("size").or_insert(size.into());
        }
    }
    let mut out = render_object(&fields);
    if let Some(headers) = event.get("headers").and_then(Value::as_object) {
        out.push_str("\nheaders:\n");
        for (name, value) in headers {
            let _ = writeln!(out, "  {}: {}", clean(name), super::table::scalar(value));
        }
    }
    if let Some(deliveries) = deliveries {
        out.push_str("\ndeliveries:\n");
        out.push_str(&render_list(deliveries, DELIVERY_COLUMNS));
    }
    match (
        event.get("body").and_then(Value::as_str),
        event.get("bodyEncoding").and_then(Value::as_str),
    ) {
        (None, _) => out.push_str("\nbody: not stored (ephemeral bucket)\n"),
        (Some(_), Some("base64")) => {
            out.push_str("\nbody: binary, base64 (use --json to get it)\n")
        }
        (Some(body), _) => {
            out.push_str("\nbody:\n");
            out.push_str(&clean_multiline(body));
            if !body.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// Runs one events verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List {
            bucket,
            after,
            limit,
            wait,
        } => {
            let query = list_query(bucket.as_deref(), after.as_deref(), limit, wait);
            let answer = api
                .get(&["v1", "events"], &query, wait.map(Duration::from_secs))
                .await?;
            view.list(&answer, "events", COLUMNS);
            if let (false, Some(next)) = (view.json, answer.get("next").and_then(Value::as_str)) {
                // On stderr, so the table on stdout stays clean for pipes.
                eprintln!("more: --after {}", clean(next));
            }
        }
        EventsCommand::Show { id } => {
            let answer = api.get(&["v1", "events", &id], &[], None).await?;
            if view.json {
                view.raw(&answer);
            } else {
                crate::out!("{}", render_event(&answer));
            }
        }
        EventsCommand::Resend { id, output } => {
            let query: Vec<(&str, String)> = output.into_iter().map(|o| ("output", o)).collect();
            let url = api.url_with_query(&["v1", "events", &id, "resend"], &query);
            let answer = api.send_url(Method::POST, url, None).await?;
            if view.json {
                view.raw(&answer);
            } else if let Some(deliveries) = answer.get("deliveries").and_then(Value::as_array) {
                crate::out!("{}", render_list(deliveries, DELIVERY_COLUMNS));
            } else if answer.is_null() {
                crate::outln!("resent {}", clean(&id));
            } else {
                crate::out!("{}", render_object(&answer));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_query_has_only_given_flags() {
        assert!(list_query(None, None, None, None).is_empty());
        assert_eq!(
            list_query(Some("prod"), Some("evt_01"), Some(10), Some(30)),
            vec![
                ("bucket", "prod".to_owned()),
                ("after", "evt_01".to_owned()),
                ("limit", "10".to_owned()),
                ("wait", "30".to_owned()),
            ]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(body_size(&json!({"body": "héllo"})), Some(6));
        assert_eq!(
            body_size(&json!({"body": "AAEC", "bodyEncoding": "base64"})),
            Some(3)
        );
        assert_eq!(
            body_size(&json!({"body": "AAE=", "bodyEncoding": "base64"})),
            Some(2)
        );
        assert_eq!(body_size(&json!({"size": 42})), Some(42));
        assert_eq!(body_size(&json!({})), None);
    }

    #[test]
    fn event_rows() {
        let events = vec![json!({
            "id": "evt_01", "receivedAt": 1_711_324_800_123_i64, "method": "POST",
            "integration": "github", "eventType": "push\u{1b}[2J", "verified": true, "body": "{}"
        })];
        let text = render_list(&events, COLUMNS);
        let mut lines = text.lines();
        assert_eq!(
            lines
                .next()
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>),
            Some(vec![
                "ID",
                "RECEIVED",
                "METHOD",
                "INTEGRATION",
                "EVENT-TYPE",
                "VERIFIED",
                "SIZE"
            ])
        );
        let row = lines.next().unwrap_or_default();
        assert!(row.contains("2024-03-25T00:00:00.123Z"));
        assert!(row.contains("push\\u{1b}[2J"), "{row}");
        assert!(row.ends_with(" 2"));
    }

    #[test]
    fn show_an_event_with_deliveries() {
        let answer = json!({
            "id": "evt_01", "receivedAt": 0, "method": "POST", "integration": null,
            "headers": {"content-type": "application/json"}, "body": "{\"a\":1}\n", "bodyEncoding": "utf8",
            "verified": false,
            "deliveries": [{"output": "out_1", "group": null, "state": "failed", "updatedAt": 0,
                            "attempts": [{"at": 0, "status": 500, "latencyMs": 3, "error": null}]}]
        });
        let text = render_event(&answer);
        assert!(
            text.contains("receivedAt:   1970-01-01T00:00:00.000Z (0)"),
            "{text}"
        );
        assert!(text.contains("size:         8\n"), "{text}");
        assert!(text.contains("\nheaders:\n  content-type: application/json\n"));
        assert!(
            text.contains("out_1   -      failed  1         500"),
            "{text}"
        );
        assert!(text.ends_with("\nbody:\n{\"a\":1}\n"), "{text}");
        let wrapped = json!({"event": {"id": "evt_02", "receivedAt": 0}, "deliveries": []});
        let text = render_event(&wrapped);
        assert!(text.contains("evt_02") && text.contains("not stored"));
    }
}
