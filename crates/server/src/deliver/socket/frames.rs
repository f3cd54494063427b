//! The JSON text frames of Webhook Relay's socket server (DESIGN §15), as
//! its published types name them (`relay-go` `pkg/types/ws_types.go`):
//! what a client may send, parsed with bounds, and what the server sends.
//! Pure; `crate::fuzzing` feeds [`parse`] arbitrary frames.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest key or secret a client frame may carry.
const MAX_CREDENTIAL: usize = 256;

/// Buckets one `subscribe` may name (as an agent's `Hello`).
pub(crate) const MAX_BUCKETS: usize = 256;

/// The longest bucket id or name a `subscribe` may name.
const MAX_BUCKET_NAME: usize = 256;

/// A client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Auth {
        key: String,
        secret: String,
    },
    /// `None`: every bucket the token may read.
    Subscribe(Option<Vec<String>>),
    Pong,
    /// Not ours to act on (Webhook Relay's clients send only the above).
    Other,
}

/// Why a client frame is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    #[error("a frame must be a JSON object with an \"action\"")]
    NotAnAction,
    #[error("{0} is too long")]
    TooLong(&'static str),
    #[error("at most {MAX_BUCKETS} buckets may be subscribed to")]
    TooManyBuckets,
}

/// `ActionRequest` of `ws_types.go`; absent fields are empty there too.
#[derive(Deserialize)]
struct ActionRequest {
    action: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    buckets: Option<Vec<String>>,
}

/// Parses one client text frame.
pub(crate) fn parse(text: &str) -> Result<Action, FrameError> {
    let request: ActionRequest = serde_json::from_str(text).map_err(|_| FrameError::NotAnAction)?;
    Ok(match request.action.as_str() {
        "auth" => {
            let key = request.key.unwrap_or_default();
            let secret = request.secret.unwrap_or_default();
            if key.len() > MAX_CREDENTIAL {
                return Err(FrameError::TooLong("key"));
            }
            if secret.len() > MAX_CREDENTIAL {
                return Err(FrameError::TooLong("secret"));
            }
            Action::Auth { key, secret }
        }
        "subscribe" => match request.buckets {
            Some(buckets) if buckets.len() > MAX_BUCKETS => return Err(FrameError::TooManyBuckets),
            Some(buckets) if buckets.iter().any(|b| b.len() > MAX_BUCKET_NAME) => {
                return Err(FrameError::TooLong("a bucket name"))
            }
            Some(buckets) if !buckets.is_empty() => Action::Subscribe(Some(buckets)),
            _ => Action::Subscribe(None),
        },
        "pong" | "ping" => Action::Pong,
        _ => Action::Other,
    })
}

/// `{"type":"status","status":...,"message":...}`.
pub(crate) fn status(status: &str, message: &str) -> String {
    serde_json::json!({"type": "status", "status": status, "message": message}).to_string()
}

/// The server's heartbeat.
pub(crate) fn ping() -> String {
    r#"{"type":"status","status":"ping"}"#.to_owned()
}

/// `EventMeta`, with Webhook Relay's spelling `bucked_id` kept for its
/// clients and `bucket_id` beside it.
#[derive(Debug, Serialize)]
pub(crate) struct Meta {
    /// The delivery: what `PUT /v1/logs/{id}` names.
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) bucked_id: String,
    pub(crate) bucket_id: String,
    pub(crate) bucket_name: String,
    pub(crate) input_id: String,
    pub(crate) input_name: String,
    pub(crate) output_name: String,
    pub(crate) output_destination: String,
}

/// A `webhook` frame: headers as lists under Go's canonical names, the
/// body as a string (base64, flagged, when it is not UTF-8).
pub(crate) fn webhook(
    meta: Meta,
    headers: &[(String, String)],
    query: &str,
    body: &[u8],
    method: &str,
) -> String {
    let mut grouped: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let entry = grouped
            .entry(canonical(name))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(value.clone()));
        }
    }
    let mut frame = serde_json::json!({
        "type": "webhook",
        "meta": meta,
        "headers": grouped,
        "query": query,
        "method": method,
    });
    let body = match std::str::from_utf8(body) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => {
            frame["bodyEncoding"] = Value::String("base64".into());
            Value::String(base64::engine::general_purpose::STANDARD.encode(body))
        }
    };
    frame["body"] = body;
    frame.to_string()
}

/// Go's `CanonicalMIMEHeaderKey` for the names Go would canonicalise:
/// `content-type` → `Content-Type`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames() {
        assert_eq!(
            parse(r#"{"action":"auth","key":"k","secret":"s"}"#),
            Ok(Action::Auth {
                key: "k".into(),
                secret: "s".into()
            })
        );
        assert_eq!(
            parse(r#"{"action":"subscribe","buckets":["a","bkt_1"]}"#),
            Ok(Action::Subscribe(Some(vec!["a".into(), "bkt_1".into()])))
        );
        assert_eq!(
            parse(r#"{"action":"subscribe"}"#),
            Ok(Action::Subscribe(None))
        );
        assert_eq!(parse(r#"{"action":"pong"}"#), Ok(Action::Pong));
        assert_eq!(parse(r#"{"action":"dance"}"#), Ok(Action::Other));
        assert_eq!(parse("[]"), Err(FrameError::NotAnAction));
        assert_eq!(parse(r#"{"key":"k"}"#), Err(FrameError::NotAnAction));
        let many =
            serde_json::json!({"action": "subscribe", "buckets": vec!["b"; MAX_BUCKETS + 1]});
        assert_eq!(parse(&many.to_string()), Err(FrameError::TooManyBuckets));
        let long = serde_json::json!({"action": "auth", "key": "k".repeat(300)});
        assert_eq!(parse(&long.to_string()), Err(FrameError::TooLong("key")));
    }

    #[test]
    fn webhook_frames_keep_webhook_relay_quirks() {
        let meta = Meta {
            id: "d".into(),
            event_id: "e".into(),
            bucked_id: "b".into(),
            bucket_id: "b".into(),
            bucket_name: "n".into(),
            input_id: "i".into(),
            input_name: "in".into(),
            output_name: "o".into(),
            output_destination: "http://x".into(),
        };
        let headers = [
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-multi".to_owned(), "1".to_owned()),
            ("x-multi".to_owned(), "2".to_owned()),
        ];
        let frame: Value =
            serde_json::from_str(&webhook(meta, &headers, "a=b", b"{\"hi\":1}", "PUT")).unwrap();
        assert_eq!(frame["meta"]["bucked_id"], "b");
        assert_eq!(
            frame["headers"]["Content-Type"],
            serde_json::json!(["application/json"])
        );
        assert_eq!(frame["headers"]["X-Multi"], serde_json::json!(["1", "2"]));
        assert_eq!(frame["body"], "{\"hi\":1}");
        assert!(frame.get("bodyEncoding").is_none());
        let meta = Meta {
            id: String::new(),
            event_id: String::new(),
            bucked_id: String::new(),
            bucket_id: String::new(),
            bucket_name: String::new(),
            input_id: String::new(),
            input_name: String::new(),
            output_name: String::new(),
            output_destination: String::new(),
        };
        let frame: Value = serde_json::from_str(&webhook(meta, &[], "", &[0xff], "POST")).unwrap();
        assert_eq!(frame["bodyEncoding"], "base64");
        assert_eq!(frame["body"], "/w==");
    }
}
