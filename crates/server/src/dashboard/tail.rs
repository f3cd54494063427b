//! `GET /ui/tail`: the events page's live tail, Server-Sent Events of
//! rendered rows. It follows the API's long-poll (`GET /v1/events?after=
//! &wait=`), which the store's commits wake, so it is resumable by cursor:
//! the browser's `Last-Event-ID` (or `?after=`) picks up exactly where it
//! stopped, within retention.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use model::EventId;
use serde::Deserialize;
use serde_json::Value;

use super::events::{bucket_names, row, Filters};
use super::guard::Signed;
use super::Ui;

/// Seconds one long-poll waits; under the API's 60 s cap, and short
/// enough that a signed-out or deleted credential ends the tail soon.
const WAIT_SECONDS: u64 = 25;
/// Events per read.
const READ: usize = 100;

pub(super) fn router() -> Router<Ui> {
    Router::new().route("/ui/tail", get(tail))
}

/// The resume point; the filters are the events page's ([`Filters`]).
#[derive(Deserialize)]
struct TailQuery {
    #[serde(default)]
    after: String,
}

/// What the stream carries from one read to the next.
struct Follow {
    ui: Ui,
    signed: Signed,
    filters: String,
    cursor: String,
    names: HashMap<String, String>,
    buffered: VecDeque<Value>,
}

async fn tail(
    State(ui): State<Ui>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<TailQuery>,
    Query(filters): Query<Filters>,
) -> Response {
    // The browser's own resume point wins over the page's.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&q.after);
    let cursor = match resume.parse::<EventId>() {
        Ok(id) => id.to_string(),
        Err(_) => EventId::floor_at(store::clock::now_ms()).to_string(),
    };
    let filters = filters.api_query();
    let names = bucket_names(&ui, &signed.caller()).await;
    let follow = Follow {
        ui,
        signed,
        filters,
        cursor,
        names,
        buffered: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        let html = row(&event, &follow.names).into_string();
        let sse = SseEvent::default().id(id).event("row").data(html);
        Some((Ok::<_, Infallible>(sse), follow))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

impl Follow {
    /// The next event after the cursor, waiting for one; `None` ends the
    /// stream (shutdown, or the API refusing: the browser reconnects and
    /// meets the sign-in check).
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                if let Some(id) = event["id"].as_str() {
                    self.cursor = id.to_owned();
                }
                return Some(event);
            }
            // Signed out (or expired) since the tail opened: stop.
            let live = self.ui.sessions.touch(&self.signed.cookie).is_some();
            if !live || self.ui.app.shutdown.is_cancelled() {
                return None;
            }
            let path = format!(
                "/v1/events?after={}&limit={READ}&wait={WAIT_SECONDS}{}",
                self.cursor, self.filters
            );
            let answer = self.ui.api.get(&self.signed.caller(), &path).await.ok()?;
            match answer.get("events") {
                Some(Value::Array(events)) if !events.is_empty() => {
                    self.buffered.extend(events.iter().cloned());
                }
                // A filtered wait that matched nothing still examined the
                // log up to `next`: resume after it, not before.
                _ => {
                    if let Some(next) = answer["next"].as_str() {
                        self.cursor = next.to_owned();
                    }
                }
            }
        }
    }
}
