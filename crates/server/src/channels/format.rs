//! The two wire formats of a channel's stream (DESIGN §12), as pure
//! functions of a stored event, so the fuzz target and the unit tests see
//! exactly what a client does.
//!
//! - smee.io's (`/smee/{cap}`), as smee-client 5 reads it: one JSON object
//!   per unnamed event whose keys become the forwarded request's headers,
//!   except `body` (re-serialised with `JSON.stringify`) and `query`.
//! - gosmee's (`/smee/events/{cap}`): the same headers, `bodyB` (the exact
//!   bytes in base64), a string `timestamp`, and ids `<ms>-<n>`.
//!
//! Depends on `model` only.

use base64::Engine as _;
use model::{Event, EventBody, EventId};
use serde_json::{Map, Value};

/// Header names never copied into a message: the keys the formats use for
/// themselves, and hop-by-hop or framing headers, which undici's `fetch`
/// (smee-client) refuses to send and which describe our hop, not the
/// sender's request.
const NOT_COPIED: &[&str] = &[
    "body",
    "bodyb",
    "query",
    "timestamp",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// The request's headers as one string per lower-cased name (repeats
/// joined with `, `, as RFC 9110 §5.3 allows), in arrival order. smee's
/// JSON has no way to say bytes: a value that is not UTF-8 is sent lossily.
fn headers(event: &Event) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in event.headers.iter().flatten() {
        let value = String::from_utf8_lossy(value);
        let value = value.as_ref();
        let name = name.to_ascii_lowercase();
        if NOT_COPIED.contains(&name.as_str()) {
            continue;
        }
        match out.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                out.insert(name, Value::String(value.to_owned()));
            }
        }
    }
    out
}

/// The `data:` of a smee message. A JSON body is spliced in as the sender
/// wrote it, so JSON that `JSON.parse` and `JSON.stringify` leave alone
/// reaches the destination byte for byte; any other UTF-8 body is a JSON
/// string; a body that is not UTF-8, or not stored, is `null`.
pub(crate) fn smee(event: &Event) -> String {
    let mut fields = headers(event);
    let query: Map<String, Value> = event
        .query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), Value::String(form_decode(v)))
        })
        .collect();
    fields.insert("query".into(), Value::Object(query));
    fields.insert("timestamp".into(), Value::from(event.received_at));
    let spliced = match &event.body {
        EventBody::Stored(bytes) if is_json(bytes) => {
            // Valid JSON is UTF-8. A raw CR can only be whitespace there
            // (strings escape it) and would end an SSE line, so it becomes
            // a space; `JSON.parse` drops both alike.
            Some(String::from_utf8_lossy(bytes).replace('\r', " "))
        }
        EventBody::Stored(bytes) => {
            let body = match std::str::from_utf8(bytes) {
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => Value::Null,
            };
            fields.insert("body".into(), body);
            None
        }
        EventBody::Omitted { .. } | EventBody::Undecryptable { .. } => {
            fields.insert("body".into(), Value::Null);
            None
        }
    };
    let object = Value::Object(fields).to_string();
    match spliced {
        // `{...}` without its closing brace, then `,"body":<raw>}`. The
        // object always has `query` and `timestamp`, so the comma is right.
        Some(raw) => {
            let mut out = String::with_capacity(object.len() + raw.len() + 9);
            out.push_str(&object[..object.len() - 1]);
            out.push_str(",\"body\":");
            out.push_str(&raw);
            out.push('}');
            out
        }
        None => object,
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value, as
/// express's `req.query` (smee.io's) gives it: `+` is a space, `%XX` a
/// byte, and bytes that are not UTF-8 are replaced.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// The `data:` of a gosmee message: never `body` beside `bodyB` (gosmee
/// reads whichever key its map iteration meets last).
pub(crate) fn gosmee(event: &Event) -> String {
    let mut fields = headers(event);
    let bytes: &[u8] = match &event.body {
        EventBody::Stored(bytes) => bytes,
        EventBody::Omitted { .. } | EventBody::Undecryptable { .. } => &[],
    };
    fields.insert(
        "bodyB".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    );
    fields.insert(
        "timestamp".into(),
        Value::String(event.received_at.to_string()),
    );
    Value::Object(fields).to_string()
}

/// A gosmee id: `<ms>-<n>`, the event id's time and the low 64 bits of its
/// random part (gosmee parses both halves as `uint64`). The store's
/// generator increments within a millisecond, so these differ between the
/// events of one millisecond.
pub(crate) fn gosmee_id(id: EventId) -> String {
    let ulid = id.ulid();
    format!("{}-{}", ulid.timestamp_ms(), ulid.random() as u64)
}

/// The two halves of a gosmee id, if it is one.
pub(crate) fn parse_gosmee_id(id: &str) -> Option<(u64, u64)> {
    let (ms, n) = id.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(n) {
        return None;
    }
    Some((ms.parse().ok()?, n.parse().ok()?))
}

/// Whether `id` is the event a gosmee id `(ms, n)` names.
pub(crate) fn names(id: EventId, (ms, n): (u64, u64)) -> bool {
    let ulid = id.ulid();
    ulid.timestamp_ms() == ms && ulid.random() as u64 == n
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{BucketId, EventMarks, InputId, TenantId};

    fn event(headers: &[(&str, &str)], query: &str, body: &[u8]) -> Event {
        Event {
            id: EventId::floor_at(1_700_000_000_123),
            tenant: TenantId::default_tenant(),
            bucket: BucketId::generate(),
            input: InputId::generate(),
            integration: None,
            received_at: 1_700_000_000_123,
            method: "POST".into(),
            path: String::new(),
            query: Some(query.into()),
            headers: Some(
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect(),
            ),
            body: EventBody::Stored(body.to_vec()),
            client_ip: "127.0.0.1".into(),
            delivery_id: None,
            event_type: None,
            event_count: 1,
            verified: false,
            marks: EventMarks::default(),
            forwarded: None,
        }
    }

    #[test]
    fn smee_splices_json_and_quotes_the_rest() {
        let e = event(
            &[
                ("content-type", "application/json"),
                ("x-a", "1"),
                ("x-a", "2"),
                ("host", "relay"),
                ("body", "shadow"),
            ],
            "a=1&b=x%20y",
            br#"{"n":1.0,"s":"\u00e9"}"#,
        );
        let data = smee(&e);
        assert!(
            data.ends_with(r#","body":{"n":1.0,"s":"\u00e9"}}"#),
            "{data}"
        );
        let v: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["x-a"], "1, 2");
        assert_eq!(v["query"]["b"], "x y");
        assert_eq!(form_decode("a+b%2B%zz%"), "a b+%zz%");
        assert_eq!(v["timestamp"], 1_700_000_000_123_i64);
        assert!(v.get("host").is_none());
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.iter().filter(|k| *k == "body").count(), 1);

        let form = smee(&event(&[], "", b"a=1&b=2"));
        let v: Value = serde_json::from_str(&form).unwrap();
        assert_eq!(v["body"], "a=1&b=2");
        let binary = smee(&event(&[], "", &[0xff, 0xfe]));
        let v: Value = serde_json::from_str(&binary).unwrap();
        assert_eq!(v["body"], Value::Null);
        // A CRLF-pretty JSON body stays one SSE-safe JSON document.
        let pretty = smee(&event(&[], "", b"{\r\n  \"a\": 1\r\n}"));
        assert!(!pretty.contains('\r'));
        let v: Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(v["body"]["a"], 1);
    }

    #[test]
    fn gosmee_carries_exact_bytes_and_a_string_timestamp() {
        let data = gosmee(&event(
            &[("X-GitHub-Event", "push")],
            "a=1",
            &[0, 159, 146, 150],
        ));
        let v: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["bodyB"], "AJ+Slg==");
        assert_eq!(v["timestamp"], "1700000000123");
        assert_eq!(v["x-github-event"], "push");
        assert!(v.get("body").is_none() && v.get("query").is_none());
    }

    #[test]
    fn gosmee_ids_round_trip() {
        let id: EventId = "evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse().unwrap();
        let text = gosmee_id(id);
        assert_eq!(text, format!("{}-{}", (1_u64 << 48) - 1, u64::MAX));
        let parsed = parse_gosmee_id(&text).unwrap();
        assert!(names(id, parsed));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-1-1",
            "1-+1",
            "99999999999999999999999-1",
        ] {
            assert_eq!(parse_gosmee_id(bad), None, "{bad}");
        }
    }
}
