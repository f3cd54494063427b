//! The channel object (DESIGN §12): a read capability on one bucket's
//! events for smee and gosmee clients, which cannot send credentials.
//!
//! The capability itself is never stored: a channel keeps the SHA-256 of
//! it (hex), the store finds a channel by that digest, and the capability
//! is shown once, when the channel is made (as a token's secret is).

use serde::{Deserialize, Serialize};

use crate::ids::{BucketId, EventId, TenantId};

/// Channels one bucket may have: a tenant grows this list, so it is capped
/// (400 naming `channels` past it).
pub const MAX_CHANNELS_PER_BUCKET: usize = 16;

/// A bucket's read capability for smee and gosmee clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: crate::ids::ChannelId,
    pub tenant: TenantId,
    pub bucket: BucketId,
    /// Lowercase hex SHA-256 of the capability (the URL's random part).
    pub capability_sha256: String,
    /// The last event sent to any client of the channel, as last saved: a
    /// client that comes back without `Last-Event-ID` resumes after it.
    pub cursor: Option<EventId>,
    pub created_at: i64,
}
