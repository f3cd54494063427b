//! Events (accepted requests) and their deliveries (DESIGN §1, §3.2).

use serde::{Deserialize, Serialize};

use crate::ids::{BucketId, EventId, InputId, OutputId, TenantId};
use crate::IntegrationKind;

/// What ingest hands to the store: everything about an accepted request
/// except the id and receive time, which the store assigns at commit so that
/// id order is commit order.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant: TenantId,
    pub bucket: BucketId,
    pub input: InputId,
    pub integration: Option<IntegrationKind>,
    pub method: String,
    /// The path after the input's route (`/extra/path`), or empty.
    pub path: String,
    pub query: String,
    /// Header names lower-cased, in arrival order; repeated names repeat.
    /// Values are the bytes received, UTF-8 or not (DESIGN §8).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: EventBody,
    pub client_ip: String,
    pub delivery_id: Option<String>,
    pub event_type: Option<String>,
    pub event_count: u32,
    pub verified: bool,
    /// What ingest decided beyond the request itself.
    pub marks: EventMarks,
    /// The request as the input's function changed it; `None` when it
    /// changed nothing (deliveries then carry the original bytes).
    pub forwarded: Option<Forwarded>,
    /// Dedup window for `delivery_id`, in ms: the store records the id and
    /// refuses a second event with it inside the window.
    pub dedup_window_ms: i64,
}

/// The payload of an event. Ephemeral buckets keep only the size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    Stored(Vec<u8>),
    /// Not stored (ephemeral bucket); only its size is known.
    Omitted {
        size: u64,
    },
    /// Stored encrypted, but it could not be decrypted (altered ciphertext,
    /// or a key the relay no longer has). Headers and query are absent too.
    Undecryptable {
        size: u64,
    },
}

impl EventBody {
    /// The body size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            EventBody::Stored(b) => b.len() as u64,
            EventBody::Omitted { size } | EventBody::Undecryptable { size } => *size,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub tenant: TenantId,
    pub bucket: BucketId,
    pub input: InputId,
    pub integration: Option<IntegrationKind>,
    pub received_at: i64,
    pub method: String,
    pub path: String,
    /// `None` for ephemeral events.
    pub query: Option<String>,
    /// As [`NewEvent::headers`]: values byte-exact.
    pub headers: Option<Vec<(String, Vec<u8>)>>,
    pub body: EventBody,
    pub client_ip: String,
    pub delivery_id: Option<String>,
    pub event_type: Option<String>,
    pub event_count: u32,
    pub verified: bool,
    pub marks: EventMarks,
    /// As [`NewEvent::forwarded`]; `None` too when the payload is not
    /// stored (ephemeral) or cannot be opened.
    pub forwarded: Option<Forwarded>,
}

/// The request an input function made of the original (DESIGN §9, §14):
/// what deliveries carry instead of it. Sealed with the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Values byte-exact, as [`NewEvent::headers`].
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Header values as text, for what works on text (functions, the smee
/// and Webhook Relay socket frames): a value that is not UTF-8 has each
/// invalid sequence replaced by U+FFFD. Delivery, storage and the API keep
/// the bytes.
pub fn headers_lossy(headers: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
        .collect()
}

/// Text header values (from a function) as stored values: `original`,
/// byte-exact, when the text is what [`headers_lossy`] made of it, so a
/// function that leaves the headers alone never alters a value that is not
/// UTF-8; else the text's bytes.
pub fn headers_from_text(
    text: Vec<(String, String)>,
    original: &[(String, Vec<u8>)],
) -> Vec<(String, Vec<u8>)> {
    let unchanged = text.len() == original.len()
        && text.iter().zip(original).all(|((tn, tv), (on, ov))| {
            tn == on && tv.as_bytes() == String::from_utf8_lossy(ov).as_bytes()
        });
    if unchanged {
        return original.to_vec();
    }
    text.into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect()
}

/// What ingest decided about an event beyond the request itself (DESIGN
/// §14): a provider handshake the relay answered, an input function that
/// stopped forwarding or failed. Stored beside the event's plain fields; a
/// marked `handshake` or `stopped` event has no deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventMarks {
    /// A provider URL-verification handshake, answered by the relay.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub handshake: bool,
    /// The input's function called `StopForwarding()`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Why the input's function failed; the event went on unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
}

impl EventMarks {
    /// Whether the event is delivered to its bucket's outputs.
    pub fn delivers(&self) -> bool {
        !self.handshake && !self.stopped
    }

    /// Whether nothing is marked (the common case, stored as nothing).
    pub fn is_empty(&self) -> bool {
        *self == EventMarks::default()
    }
}

/// The state of one event for one output (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    InFlight,
    Delivered,
    Failed,
    Expired,
    /// An output function stopped it (DESIGN §9).
    Skipped,
}

impl DeliveryState {
    /// The state's name as stored and answered.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::InFlight => "in_flight",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Expired => "expired",
            DeliveryState::Skipped => "skipped",
        }
    }

    /// Parses a stored state name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::InFlight,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::Expired,
            DeliveryState::Skipped,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// One try at delivering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: i64,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// One event's delivery to one output (and, for internal outputs, one group).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub event: EventId,
    pub output: OutputId,
    /// The agent group; `None` until agent delivery assigns one.
    pub group: Option<String>,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_headers_keep_the_original_bytes_unless_changed() {
        let original = vec![
            ("x-raw".to_owned(), b"a\xff\xfeb".to_vec()),
            ("x-a".to_owned(), b"1".to_vec()),
        ];
        let text = headers_lossy(&original);
        assert_eq!(text[0].1, "a\u{fffd}\u{fffd}b");
        assert_eq!(headers_from_text(text.clone(), &original), original);
        let mut changed = text;
        changed[1].1 = "2".into();
        let back = headers_from_text(changed, &original);
        assert_eq!(back[1].1, b"2");
        assert_eq!(back[0].1, "a\u{fffd}\u{fffd}b".as_bytes());
    }
}
