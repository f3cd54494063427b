//! The channel objects (DESIGN §12): [`Channels`].

use async_trait::async_trait;
use model::{BucketId, Channel, ChannelId, EventId, TenantId};

use crate::Result;

/// A bucket's channels: read capabilities for smee and gosmee clients.
///
/// Guarantees:
/// - **Found by digest only**: [`Channels::channel_by_capability`] takes
///   the SHA-256 of the capability, never the capability (which the store
///   never holds), and is the one lookup without a tenant (the public
///   stream knows only the URL).
/// - **Tenant isolation**: listing, deleting and moving the cursor go
///   through the tenant. Deleting the tenant or the bucket deletes its
///   channels; a deleted channel is never found again.
/// - **The cursor only moves forward**: a save older than the stored one
///   is ignored, so two clients saving out of order never rewind it.
#[async_trait]
pub trait Channels: Send + Sync + 'static {
    /// [`crate::Error::NotFound`] if the tenant does not exist.
    async fn create_channel(&self, channel: &Channel) -> Result<()>;
    /// The bucket's channels, oldest first.
    async fn list_channels(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Channel>>;
    /// Public streams: the channel whose capability has this digest.
    async fn channel_by_capability(&self, sha256_hex: &str) -> Result<Channel>;
    /// Saves the last event sent to the channel's clients.
    async fn advance_channel_cursor(
        &self,
        tenant: &TenantId,
        id: &ChannelId,
        cursor: EventId,
    ) -> Result<()>;
    async fn delete_channel(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        id: &ChannelId,
    ) -> Result<()>;
}
