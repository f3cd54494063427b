//! What the API shows of events and deliveries (DESIGN §3.2): the event
//! with its body as UTF-8 text or base64, repeated headers joined, and its
//! deliveries with their attempts.

use std::collections::BTreeMap;

use base64::Engine;
use model::{Attempt, Delivery, DeliveryState, Event, EventBody, IntegrationKind};
use serde::Serialize;
use utoipa::ToSchema;

/// An event as DESIGN §3.2 shows it. Repeated header names are joined with
/// `, ` as HTTP allows; when any value is not UTF-8, every value is base64
/// and `headerEncoding` says so (DESIGN §8). An ephemeral event has no
/// headers, query or body.
/// An event whose stored payload cannot be decrypted (altered, or under a
/// key the relay no longer has) has none either, and says so with
/// `"error": "undecryptable"`: listed with the others, never as garbage.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventOut {
    /// `evt_` + ULID: time-ordered.
    id: String,
    tenant: String,
    bucket: String,
    input: String,
    integration: Option<IntegrationKind>,
    /// ms since the Unix epoch.
    received_at: i64,
    method: String,
    /// The path after the input's route, or empty.
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    /// `utf8` or `base64` (every value), beside `headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    header_encoding: Option<BodyEncoding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// `utf8` or `base64`, beside `body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<BodyEncoding>,
    /// `undecryptable` when the stored payload could not be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    /// The body's size in bytes, stored or not.
    size: u64,
    delivery_id: Option<String>,
    event_type: Option<String>,
    event_count: u32,
    verified: bool,
    /// `handshake`, `stopped` and `functionError`, each only when set (§14).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    marks: model::EventMarks,
    /// The request as the input's function changed it (DESIGN §14); the
    /// fields above stay the original request.
    #[serde(skip_serializing_if = "Option::is_none")]
    forwarded: Option<ForwardedOut>,
}

/// `forwarded`: the same fields as the event's own request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ForwardedOut {
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    header_encoding: BodyEncoding,
    body: String,
    body_encoding: BodyEncoding,
}

fn body_text(bytes: &[u8]) -> (String, BodyEncoding) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), BodyEncoding::Utf8),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            BodyEncoding::Base64,
        ),
    }
}

/// How `body` (or every value of `headers`) is written.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BodyEncoding {
    Utf8,
    Base64,
}

impl From<&Event> for EventOut {
    fn from(e: &Event) -> Self {
        let Event {
            id,
            tenant,
            bucket,
            input,
            integration,
            received_at,
            method,
            path,
            query,
            headers,
            body,
            client_ip: _,
            delivery_id,
            event_type,
            event_count,
            verified,
            marks,
            forwarded,
        } = e;
        let (text, encoding) = match body {
            EventBody::Stored(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => (Some(text.to_owned()), Some(BodyEncoding::Utf8)),
                Err(_) => (
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    Some(BodyEncoding::Base64),
                ),
            },
            EventBody::Omitted { .. } | EventBody::Undecryptable { .. } => (None, None),
        };
        let (headers, header_encoding) = match headers.as_deref().map(joined) {
            Some((map, encoding)) => (Some(map), Some(encoding)),
            None => (None, None),
        };
        EventOut {
            id: id.to_string(),
            tenant: tenant.to_string(),
            bucket: bucket.to_string(),
            input: input.to_string(),
            integration: *integration,
            received_at: *received_at,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers,
            header_encoding,
            body: text,
            body_encoding: encoding,
            error: matches!(body, EventBody::Undecryptable { .. }).then_some("undecryptable"),
            size: body.size(),
            delivery_id: delivery_id.clone(),
            event_type: event_type.clone(),
            event_count: *event_count,
            verified: *verified,
            marks: marks.clone(),
            forwarded: forwarded.as_ref().map(|f| {
                let (body, body_encoding) = body_text(&f.body);
                let (headers, header_encoding) = joined(&f.headers);
                ForwardedOut {
                    method: f.method.clone(),
                    path: f.path.clone(),
                    query: f.query.clone(),
                    headers,
                    header_encoding,
                    body,
                    body_encoding,
                }
            }),
        }
    }
}

/// Header pairs as one map, repeated names joined with `, `: as text when
/// every value is UTF-8, else every (joined) value in base64.
fn joined(headers: &[(String, Vec<u8>)]) -> (BTreeMap<String, String>, BodyEncoding) {
    let mut map: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name)
            .and_modify(|existing| {
                existing.extend_from_slice(b", ");
                existing.extend_from_slice(value);
            })
            .or_insert_with(|| value.clone());
    }
    if map.values().all(|v| std::str::from_utf8(v).is_ok()) {
        let text = map
            .into_iter()
            .map(|(n, v)| (n.to_owned(), String::from_utf8(v).unwrap_or_default()))
            .collect();
        return (text, BodyEncoding::Utf8);
    }
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let map = map
        .into_iter()
        .map(|(n, v)| (n.to_owned(), b64(&v)))
        .collect();
    (map, BodyEncoding::Base64)
}

/// One event with its deliveries (`GET /v1/events/{id}`).
#[derive(Serialize, ToSchema)]
pub(crate) struct EventDetail {
    #[serde(flatten)]
    event: EventOut,
    deliveries: Vec<DeliveryOut>,
}

impl EventDetail {
    pub(crate) fn new(event: &Event, deliveries: &[Delivery]) -> Self {
        EventDetail {
            event: event.into(),
            deliveries: deliveries.iter().map(DeliveryOut::from).collect(),
        }
    }
}

/// The state of one event for one output (and agent group).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryOut {
    event: String,
    output: String,
    /// The agent group; null until agent delivery assigns one.
    group: Option<String>,
    state: DeliveryState,
    attempts: Vec<AttemptOut>,
    updated_at: i64,
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        let Delivery {
            event,
            output,
            group,
            state,
            attempts,
            updated_at,
        } = d;
        DeliveryOut {
            event: event.to_string(),
            output: output.to_string(),
            group: group.clone(),
            state: *state,
            attempts: attempts.iter().map(AttemptOut::from).collect(),
            updated_at: *updated_at,
        }
    }
}

/// One try at delivering.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttemptOut {
    at: i64,
    /// The destination's status; null when none answered.
    status: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
}

impl From<&Attempt> for AttemptOut {
    fn from(a: &Attempt) -> Self {
        let Attempt {
            at,
            status,
            latency_ms,
            error,
        } = a;
        AttemptOut {
            at: *at,
            status: *status,
            latency_ms: *latency_ms,
            error: error.clone(),
        }
    }
}
