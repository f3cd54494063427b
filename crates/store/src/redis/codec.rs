//! How records sit in Redis and come back: JSON of the model types (their
//! secrets sealed apart), the event metadata, and decoding of the nested
//! replies of Lua scripts. Everything read from Redis is checked here:
//! undecodable data is `Error::Corrupt`, never a panic.

use std::collections::HashMap;

use crypto::Keyring;
use model::{Event, EventBody, EventId, IntegrationKind, TenantId};
use redis::Value;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{sealed, Error, Result};

/// A Redis failure: the store cannot answer (the server says 503).
pub(super) fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("redis: {e}"))
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("cannot encode: {e}")))
}

pub(super) fn from_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

/// A hash as read (`HGETALL`), by field.
pub(super) type Fields = HashMap<String, Vec<u8>>;

pub(super) fn field<'a>(f: &'a Fields, name: &str, what: &str) -> Result<&'a [u8]> {
    f.get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| Error::Corrupt(format!("{what}: no field {name}")))
}

pub(super) fn text_field(f: &Fields, name: &str, what: &str) -> Result<String> {
    String::from_utf8(field(f, name, what)?.to_vec())
        .map_err(|_| Error::Corrupt(format!("{what}: field {name} is not UTF-8")))
}

pub(super) fn int_field(f: &Fields, name: &str, what: &str) -> Result<i64> {
    text_field(f, name, what)?
        .parse()
        .map_err(|_| Error::Corrupt(format!("{what}: field {name} is not a number")))
}

// ---- Lua replies ----

pub(super) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Corrupt(format!("expected an array, got {other:?}"))),
    }
}

pub(super) fn bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Corrupt(format!("expected a string, got {other:?}"))),
    }
}

pub(super) fn text(v: Value) -> Result<String> {
    String::from_utf8(bytes(v)?).map_err(|_| Error::Corrupt("a reply is not UTF-8".into()))
}

/// A flat `field, value, ...` array (HGETALL inside Lua) as a map.
pub(super) fn fields(v: Value) -> Result<Fields> {
    match v {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((text(k)?, bytes(v)?)))
            .collect(),
        v => {
            let items = array(v)?;
            let mut out = HashMap::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.insert(text(k)?, bytes(v)?);
            }
            Ok(out)
        }
    }
}

/// An optional number sent as text (`''` is none).
pub(super) fn opt_ms(v: Value) -> Result<Option<i64>> {
    let t = text(v)?;
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<f64>()
        .map(|f| Some(f as i64))
        .map_err(|_| Error::Corrupt(format!("not a time: {t:?}")))
}

// ---- events ----

/// An event's plain fields, stored as JSON beside its sealed payload.
#[derive(Serialize, Deserialize)]
pub(super) struct EventMeta {
    pub(super) bucket: model::BucketId,
    pub(super) input: model::InputId,
    pub(super) integration: Option<IntegrationKind>,
    pub(super) received_at: i64,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) client_ip: String,
    pub(super) delivery_id: Option<String>,
    pub(super) event_type: Option<String>,
    pub(super) event_count: u32,
    pub(super) verified: bool,
    #[serde(default, skip_serializing_if = "model::EventMarks::is_empty")]
    pub(super) marks: model::EventMarks,
}

/// Decodes an event hash (`m` metadata, `p` sealed payload if kept, `a`
/// the id it was sealed under when the append script re-minted the
/// event's id) and opens its payload; a payload that does not open is
/// reported on that event alone, like SQLite does.
pub(super) fn event(tenant: &TenantId, id: &str, f: &Fields, keys: &Keyring) -> Result<Event> {
    let what = "event";
    let meta: EventMeta = from_json(field(f, "m", what)?, what)?;
    let event_id = id
        .parse::<EventId>()
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    let sealed_as = match f.get("a") {
        Some(a) => std::str::from_utf8(a)
            .map_err(|_| Error::Corrupt(format!("{what}: field a is not UTF-8")))?,
        None => id,
    };
    let (query, headers, body, forwarded) =
        match f.get("p").map(|p| sealed::open_event(keys, sealed_as, p)) {
            None => (None, None, EventBody::Omitted { size: meta.size }, None),
            Some(Ok(p)) => (
                Some(p.query),
                Some(p.headers),
                EventBody::Stored(p.body),
                p.forwarded,
            ),
            Some(Err(err)) => {
                tracing::warn!(event_id = %id, %err, "event payload cannot be decrypted");
                (
                    None,
                    None,
                    EventBody::Undecryptable { size: meta.size },
                    None,
                )
            }
        };
    Ok(Event {
        id: event_id,
        tenant: tenant.clone(),
        bucket: meta.bucket,
        input: meta.input,
        integration: meta.integration,
        // The id's time, which the metadata's copy of it equals unless the
        // append script re-minted the id.
        received_at: event_id.ulid().timestamp_ms() as i64,
        method: meta.method,
        path: meta.path,
        query,
        headers,
        body,
        client_ip: meta.client_ip,
        delivery_id: meta.delivery_id,
        event_type: meta.event_type,
        event_count: meta.event_count,
        verified: meta.verified,
        marks: meta.marks,
        forwarded,
    })
}

/// A delivery hash as `event()` answers it.
pub(super) fn delivery(key: &crate::DeliveryKey, f: &Fields) -> Result<model::Delivery> {
    let what = "delivery";
    let state = text_field(f, "state", what)?;
    Ok(model::Delivery {
        event: key.event,
        output: key.output.clone(),
        group: key.group.clone(),
        state: model::DeliveryState::from_name(&state)
            .ok_or_else(|| Error::Corrupt(format!("delivery state {state:?}")))?,
        attempts: from_json(field(f, "attempts", what)?, what)?,
        updated_at: int_field(f, "updated", what)?,
    })
}
