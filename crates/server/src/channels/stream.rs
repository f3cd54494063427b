//! `GET /smee/{cap}` (smee.io's format) and `GET /smee/events/{cap}`
//! (gosmee's): a channel's events as Server-Sent Events, for anyone who
//! holds the capability.
//!
//! Where a stream starts: after `Last-Event-ID` when the client sends one
//! (an event id for smee, `<ms>-<n>` for gosmee), but never before the
//! bucket's catch-up window (gosmee is told with `gosmee-gap`); without
//! one, for a client that is the channel's only one on this node, after
//! the channel's cursor (smee-client sends no `Last-Event-ID` after a
//! restart); otherwise at the present, like smee.io. An ephemeral bucket's
//! streams always start at the present (nothing of it is stored to replay).
//!
//! Every stream reads the store by cursor on each commit tick, so every
//! client of a channel gets every event and a slow one loses nothing.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt as _;
use model::{Bucket, Channel, Event, EventId};
use sha2::{Digest, Sha256};
use store::{Cursor, EventQuery};
use subtle::ConstantTimeEq;

use super::{format, Client, CURSOR_SAVE_INTERVAL, REVALIDATE_INTERVAL};
use crate::error::{ApiError, Path};
use crate::state::AppState;

/// Events read per store query.
const PAGE: usize = 100;

/// What a client waits before reconnecting (`retry:`), in the smee and
/// gosmee formats alike.
const RETRY: Duration = Duration::from_secs(1);

/// Comments sent on an idle stream, so proxies keep it and a vanished
/// client is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Hex characters of a capability: 128 random bits.
pub(super) const CAPABILITY_HEX: usize = 32;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/smee/{cap}", get(smee))
        .route("/smee/events/{cap}", get(gosmee))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Smee,
    Gosmee,
}

async fn smee(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(cap): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    open(state, peer, &cap, &headers, Format::Smee).await
}

async fn gosmee(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(cap): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    open(state, peer, &cap, &headers, Format::Gosmee).await
}

/// The digest the store knows a capability by; `None` for text that is
/// not one (answered 404 without a store read).
pub(super) fn digest_of(cap: &str) -> Option<String> {
    let well_formed = cap.len() == CAPABILITY_HEX
        && cap
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then(|| {
        Sha256::digest(cap.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The channel a capability opens, and its bucket.
async fn find(state: &AppState, cap: &str) -> Result<(Channel, Bucket), ApiError> {
    let gone = || ApiError::not_found("channel");
    let digest = digest_of(cap).ok_or_else(gone)?;
    let channel = match state.store.channel_by_capability(&digest).await {
        Ok(channel) => channel,
        Err(store::Error::NotFound) => return Err(gone()),
        Err(other) => return Err(other.into()),
    };
    // The store found the row by an index on the digest, whose timing
    // says nothing about the capability (a preimage); the comparison of
    // what was found is constant-time all the same.
    if !bool::from(
        channel
            .capability_sha256
            .as_bytes()
            .ct_eq(digest.as_bytes()),
    ) {
        return Err(gone());
    }
    let bucket = crate::lookup::resolve_bucket(state, &channel.tenant, channel.bucket.as_str())
        .await
        .map_err(|_| gone())?;
    Ok((channel, bucket))
}

async fn open(
    state: AppState,
    peer: SocketAddr,
    cap: &str,
    headers: &HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    // Until the capability checks out the peer is unauthenticated: it
    // holds a place among the agents' pre-authentication sessions
    // (bounded server-wide and per address, the oldest giving way).
    let admission = state.preauth.admit(peer);
    let (channel, bucket) = tokio::select! {
        found = find(&state, cap) => found?,
        _ = admission.evicted.cancelled() => return Err(ApiError::unavailable()),
    };
    drop(admission);
    let ip = crate::client::client_ip(&state.config.trusted_proxies, peer, headers);
    let client = state
        .channels
        .open(&channel.id, ip)
        .map_err(|_| ApiError::rate_limited(RETRY.as_secs().max(1)))?;

    let window = EventId::floor_at(
        store::clock::now_ms().saturating_sub(bucket.catchup_seconds.saturating_mul(1000) as i64),
    );
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let mut gap = None;
    let start = if bucket.ephemeral {
        None
    } else {
        match (format, last_event_id) {
            (Format::Smee, Some(id)) => id.parse::<EventId>().ok().map(|id| id.max(window)),
            (Format::Gosmee, Some(id)) => match format::parse_gosmee_id(id) {
                Some((ms, _)) if (ms as i64) < window.ulid().timestamp_ms() as i64 => {
                    gap = Some(serde_json::json!({
                        "message": "the requested event is older than the channel's catch-up window; resuming at its start",
                        "lastEventId": id,
                    }));
                    Some(window)
                }
                Some(wanted) => Some(resolve_gosmee(&state, &channel, wanted).await?),
                None => None,
            },
            (_, None) if client.alone => client
                .cursor
                .max(channel.cursor)
                .map(|cursor| cursor.max(window)),
            (_, None) => None,
        }
    };
    let start = match start {
        Some(cursor) => cursor,
        None => {
            crate::api::present_cursor(&state, &channel.tenant, std::slice::from_ref(&bucket.id))
                .await?
        }
    };

    let mut opening = Vec::new();
    match format {
        // A named event: smee-client forwards only unnamed ones.
        Format::Smee => opening.push(SseEvent::default().event("ready").data("{}").retry(RETRY)),
        Format::Gosmee => {
            opening.push(
                SseEvent::default()
                    .data(r#"{"message":"ready"}"#)
                    .retry(RETRY),
            );
            if let Some(gap) = gap {
                opening.push(
                    SseEvent::default()
                        .event("gosmee-gap")
                        .data(gap.to_string()),
                );
            }
        }
    }
    let feed = Feed {
        commits: state.store.commits(),
        query: EventQuery {
            from: Cursor::After(start),
            buckets: vec![bucket.id.clone()],
            limit: PAGE,
        },
        buffered: VecDeque::new(),
        revalidate: tokio::time::interval_at(
            tokio::time::Instant::now() + REVALIDATE_INTERVAL,
            REVALIDATE_INTERVAL,
        ),
        saved_at: tokio::time::Instant::now(),
        unsaved: None,
        cap: cap.to_owned(),
        channel,
        client,
        state,
    };
    let events = futures_util::stream::unfold(feed, move |mut feed| async move {
        let event = feed.next().await?;
        let sse = match format {
            Format::Smee => SseEvent::default()
                .id(event.id.to_string())
                .data(format::smee(&event)),
            Format::Gosmee => SseEvent::default()
                .id(format::gosmee_id(event.id))
                .data(format::gosmee(&event)),
        };
        Some((Ok::<_, Infallible>(sse), feed))
    });
    let stream = futures_util::stream::iter(opening.into_iter().map(Ok)).chain(events);
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // Proxies that buffer responses (nginx) would hold the events back.
    Ok(([("x-accel-buffering", "no")], sse).into_response())
}

/// The event a gosmee id names, as a cursor: after it when found, else
/// from the start of its millisecond (a repeat is better than a loss).
async fn resolve_gosmee(
    state: &AppState,
    channel: &Channel,
    wanted: (u64, u64),
) -> Result<EventId, ApiError> {
    let floor = EventId::floor_at(i64::try_from(wanted.0).unwrap_or(i64::MAX));
    let query = EventQuery {
        from: Cursor::After(floor),
        buckets: vec![channel.bucket.clone()],
        limit: PAGE,
    };
    let page = state.store.events(&channel.tenant, &query).await?;
    Ok(page
        .iter()
        .take_while(|e| e.id.ulid().timestamp_ms() == wanted.0)
        .find(|e| format::names(e.id, wanted))
        .map_or(floor, |e| e.id))
}

/// Follows one channel's bucket from a cursor, for one client.
struct Feed {
    state: AppState,
    channel: Channel,
    cap: String,
    client: Client,
    query: EventQuery,
    commits: tokio::sync::watch::Receiver<u64>,
    buffered: VecDeque<Event>,
    revalidate: tokio::time::Interval,
    /// When the cursor was last saved, and what was sent since.
    saved_at: tokio::time::Instant,
    unsaved: Option<EventId>,
}

impl Feed {
    /// The next event to send, or `None` when the stream ends (revoked,
    /// shutdown, or the store failing).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.client.revoked.is_cancelled() {
                return None;
            }
            if let Some(event) = self.buffered.pop_front() {
                self.query.from = Cursor::After(event.id);
                // Handshakes and stopped events are not forwarded
                // anywhere; a channel is no exception.
                if !event.marks.delivers() {
                    continue;
                }
                self.sent(event.id).await;
                return Some(event);
            }
            self.commits.borrow_and_update();
            match self
                .state
                .store
                .events(&self.channel.tenant, &self.query)
                .await
            {
                Ok(page) if !page.is_empty() => {
                    self.buffered.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%err, "channel stream read failed; closing the stream");
                    return None;
                }
            }
            tokio::select! {
                changed = self.commits.changed() => changed.ok()?,
                _ = self.state.shutdown.cancelled() => return None,
                _ = self.client.revoked.cancelled() => return None,
                _ = self.revalidate.tick() => {
                    if let Err(err) = find(&self.state, &self.cap).await {
                        if err.status == http::StatusCode::NOT_FOUND {
                            return None;
                        }
                    }
                }
            }
        }
    }

    async fn sent(&mut self, id: EventId) {
        self.client.sent(id);
        self.unsaved = Some(id);
        if self.saved_at.elapsed() >= CURSOR_SAVE_INTERVAL {
            self.saved_at = tokio::time::Instant::now();
            if let Some(cursor) = self.unsaved.take() {
                if let Err(err) = self
                    .state
                    .store
                    .advance_channel_cursor(&self.channel.tenant, &self.channel.id, cursor)
                    .await
                {
                    tracing::debug!(%err, "saving a channel cursor failed");
                }
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(cursor) = self.unsaved.take() {
            super::save_cursor_later(
                &self.state,
                self.channel.tenant.clone(),
                self.channel.id.clone(),
                cursor,
            );
        }
    }
}
