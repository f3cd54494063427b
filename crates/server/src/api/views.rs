//! JSON shapes of the API answers (DESIGN §3.2, §3.4): camelCase, secrets
//! removed, computed fields (an input's URL) added.

use base64::Engine;
use model::{Bucket, Delivery, Event, EventBody, Input, Output, Tenant, Token};
use serde_json::{json, Map, Value};

/// Serialises `value` into a JSON object.
fn object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        // Every model type serialises to an object; anything else is a bug
        // that must not crash a request, so it shows as an empty object.
        _ => Map::new(),
    }
}

pub(crate) fn tenant(t: &Tenant) -> Value {
    Value::Object(object(t))
}

pub(crate) fn bucket(b: &Bucket) -> Value {
    let mut map = object(b);
    map.insert("auth".into(), b.auth.redacted());
    Value::Object(map)
}

pub(crate) fn input(i: &Input, public_url: &str) -> Value {
    let mut map = object(i);
    map.insert(
        "url".into(),
        json!(format!("{public_url}/v1/webhooks/{}", i.id)),
    );
    map.insert("secretCount".into(), json!(i.secrets.len()));
    Value::Object(map)
}

pub(crate) fn output(o: &Output) -> Value {
    Value::Object(object(o))
}

pub(crate) fn token(t: &Token) -> Value {
    Value::Object(object(t))
}

pub(crate) fn delivery(d: &Delivery) -> Value {
    Value::Object(object(d))
}

/// An event as DESIGN §3.2 shows it. Repeated header names are joined with
/// `, ` as HTTP allows; an ephemeral event has no headers, query or body.
/// An event whose stored payload cannot be decrypted (altered, or under a
/// key the relay no longer has) has none either, and says so with
/// `"error": "undecryptable"`: listed with the others, never as garbage.
pub(crate) fn event(e: &Event) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(e.id.to_string()));
    map.insert("tenant".into(), json!(e.tenant));
    map.insert("bucket".into(), json!(e.bucket));
    map.insert("input".into(), json!(e.input));
    map.insert("integration".into(), json!(e.integration.map(|k| k.name())));
    map.insert("receivedAt".into(), json!(e.received_at));
    map.insert("method".into(), json!(e.method));
    map.insert("path".into(), json!(e.path));
    if let Some(query) = &e.query {
        map.insert("query".into(), json!(query));
    }
    if let Some(headers) = &e.headers {
        let mut joined = Map::new();
        for (name, value) in headers {
            match joined.get_mut(name) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(value);
                }
                _ => {
                    joined.insert(name.clone(), json!(value));
                }
            }
        }
        map.insert("headers".into(), Value::Object(joined));
    }
    if let EventBody::Stored(bytes) = &e.body {
        let (body, encoding) = match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                "base64",
            ),
        };
        map.insert("body".into(), json!(body));
        map.insert("bodyEncoding".into(), json!(encoding));
    }
    if let EventBody::Undecryptable { .. } = &e.body {
        map.insert("error".into(), json!("undecryptable"));
    }
    map.insert("size".into(), json!(e.body.size()));
    map.insert("deliveryId".into(), json!(e.delivery_id));
    map.insert("eventType".into(), json!(e.event_type));
    map.insert("eventCount".into(), json!(e.event_count));
    map.insert("verified".into(), json!(e.verified));
    // `handshake`, `stopped` and `functionError` appear only when set (§14).
    map.extend(object(&e.marks));
    Value::Object(map)
}

/// Applies a PATCH: its fields replace those of `current` (a create body),
/// and the result is parsed and checked as a create body would be.
pub(crate) fn apply_patch<B: serde::de::DeserializeOwned>(
    mut current: Map<String, Value>,
    patch: Value,
) -> Result<B, crate::error::ApiError> {
    let Value::Object(patch) = patch else {
        return Err(crate::error::ApiError::invalid_request(
            "the body must be a JSON object",
        ));
    };
    current.extend(patch);
    serde_json::from_value(Value::Object(current)).map_err(|e| {
        crate::error::ApiError::invalid_request(crate::error::redact_strings(&e.to_string()))
    })
}

/// The stored object as a create body: `value` serialised, minus the
/// server-assigned fields.
pub(crate) fn as_create_body<T: serde::Serialize>(
    value: &T,
    assigned: &[&str],
) -> Map<String, Value> {
    let mut map = object(value);
    for key in assigned {
        map.remove(*key);
    }
    map
}
