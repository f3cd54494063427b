//! Channels (DESIGN §12): a bucket's events for the smee and gosmee
//! clients people already run, behind a read capability in the URL
//! (neither client can send credentials).
//!
//! Layout: `api` (`/v1/buckets/{id}/channels`, with a token), `stream`
//! (the public streams `/smee/{cap}` and `/smee/events/{cap}`), `format`
//! (the two wire formats, pure) and, here, [`Registry`]: the streams open
//! on this node, per channel, which is what makes revocation end them at
//! once, fan every event out to every client, and remember the cursor for
//! a client that comes back without `Last-Event-ID`.
//!
//! Depends on `store` (the `Channels` seam, event reads) and `auth`.

mod api;
pub(crate) mod format;
mod stream;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use model::{ChannelId, EventId, TenantId};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

pub(crate) use api::{ChannelCreated, ChannelList};

/// Open channel streams one client address may hold (its /64 for IPv6):
/// a developer runs a client or two per channel, a CI farm a few dozen.
pub(crate) const MAX_STREAMS_PER_IP: usize = 32;

/// Open channel streams on one node. Each holds a connection, a few KiB
/// of buffers and a store read per page of events.
pub(crate) const MAX_STREAMS: usize = 2_048;

/// How often a stream saves the channel's cursor while it sends (and once
/// when it ends): a crash loses at most this much of it, and a busy
/// channel costs one store write per second, not one per event.
pub(crate) const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// How often a stream checks that its channel still exists, for a
/// revocation made on another node of a cluster (one on this node ends
/// the stream at once).
pub(crate) const REVALIDATE_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(api::router()).merge(stream::router())
}

/// The channel streams open on this node.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    channels: HashMap<ChannelId, Live>,
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// One channel's streams on this node.
struct Live {
    clients: usize,
    /// The last event sent to any of its clients here.
    cursor: Option<EventId>,
    /// Cancelled when the channel is revoked.
    revoked: CancellationToken,
}

/// Why a stream could not be opened.
#[derive(Debug)]
pub(crate) enum Full {
    /// [`MAX_STREAMS_PER_IP`] or [`MAX_STREAMS`] reached.
    Streams,
}

impl Registry {
    /// Opens a stream of `channel` for `ip`, or refuses at the limits.
    pub(crate) fn open(&self, channel: &ChannelId, ip: IpAddr) -> Result<Client, Full> {
        let ip = crate::client::host(ip);
        let mut open = lock(&self.inner);
        if open.total >= MAX_STREAMS
            || open.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_STREAMS_PER_IP
        {
            return Err(Full::Streams);
        }
        open.total += 1;
        *open.per_ip.entry(ip).or_default() += 1;
        let live = open
            .channels
            .entry(channel.clone())
            .or_insert_with(|| Live {
                clients: 0,
                cursor: None,
                revoked: CancellationToken::new(),
            });
        let alone = live.clients == 0;
        live.clients += 1;
        Ok(Client {
            registry: Arc::clone(&self.inner),
            channel: channel.clone(),
            ip,
            alone,
            cursor: live.cursor,
            revoked: live.revoked.clone(),
        })
    }

    /// Ends every open stream of `channel` now.
    pub(crate) fn revoke(&self, channel: &ChannelId) {
        if let Some(live) = lock(&self.inner).channels.remove(channel) {
            live.revoked.cancel();
        }
    }

    /// Streams of `channel` open on this node.
    pub(crate) fn clients(&self, channel: &ChannelId) -> usize {
        lock(&self.inner)
            .channels
            .get(channel)
            .map_or(0, |l| l.clients)
    }
}

/// One open stream's place; dropping it closes the place.
pub(crate) struct Client {
    registry: Arc<Mutex<Open>>,
    channel: ChannelId,
    ip: IpAddr,
    /// No other client of the channel was connected here when it opened.
    pub(crate) alone: bool,
    /// The channel's cursor on this node when it opened.
    pub(crate) cursor: Option<EventId>,
    pub(crate) revoked: CancellationToken,
}

impl Client {
    /// Records that `id` was sent to this client.
    pub(crate) fn sent(&self, id: EventId) {
        if let Some(live) = lock(&self.registry).channels.get_mut(&self.channel) {
            live.cursor = live.cursor.max(Some(id));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut open = lock(&self.registry);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
        if let Some(live) = open.channels.get_mut(&self.channel) {
            live.clients = live.clients.saturating_sub(1);
        }
    }
}

/// Saves a channel's cursor without holding up the caller (a stream that
/// is ending); a failed save only means a later resume starts earlier.
pub(crate) fn save_cursor_later(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
    cursor: EventId,
) {
    let store = Arc::clone(&state.store);
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            if let Err(err) = store
                .advance_channel_cursor(&tenant, &channel, cursor)
                .await
            {
                tracing::debug!(%err, "saving a channel cursor failed");
            }
        });
    }
}

/// Every update is a few counters and a map entry: a poisoned lock still
/// guards a coherent map.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_bounded_per_address_and_counted_per_channel() {
        let registry = Registry::default();
        let (a, b) = (ChannelId::generate(), ChannelId::generate());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let first = registry.open(&a, ip).unwrap();
        assert!(first.alone);
        let second = registry.open(&a, ip).unwrap();
        assert!(!second.alone);
        first.sent("evt_01HF0000000000000000000000".parse().unwrap());
        let mut held: Vec<_> = (2..MAX_STREAMS_PER_IP)
            .map(|_| registry.open(&b, ip).unwrap())
            .collect();
        assert!(registry.open(&b, ip).is_err(), "the address is full");
        assert!(registry.open(&b, "10.0.0.2".parse().unwrap()).is_ok());
        held.clear();
        drop((first, second));
        assert_eq!(registry.clients(&a), 0);
        let back = registry.open(&a, ip).unwrap();
        assert!(back.alone);
        assert!(back.cursor.is_some(), "the cursor outlives its clients");
        registry.revoke(&a);
        assert!(back.revoked.is_cancelled());
    }
}
