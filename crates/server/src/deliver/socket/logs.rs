//! `PUT /v1/logs/{id}` (DESIGN §15): a Webhook Relay socket client reports
//! what its destination answered to the delivery a `webhook` frame named
//! (`meta.id`), as Webhook Relay's API takes it. The token is the socket's
//! (a `forward` agent token), as `Authorization: Basic base64(key:secret)`
//! (Webhook Relay's form) or our bearer string; the delivery must be one
//! of its group's.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::routing::put;
use axum::Router;
use base64::Engine as _;
use http::HeaderMap;
use model::{AgentMode, Attempt};
use serde::{Deserialize, Serialize};
use store::{DeliveryKey, Settle};
use utoipa::ToSchema;

use super::{group_of, parse_delivery_ref};
use crate::error::{ApiError, Json, Path};
use crate::state::AppState;

/// The longest response body a report may quote; it is not stored, only
/// bounded (Webhook Relay's API takes it).
const MAX_REPORTED_BODY: usize = 64 * 1024;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/logs/{id}", put(record))
}

/// What the client's destination answered (Webhook Relay's field names).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogBody {
    /// The destination's status code (0: no answer).
    status_code: u16,
    /// Not stored; at most 64 KiB.
    #[serde(default)]
    response_body: Option<String>,
    /// Not stored; at most 64 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Object)]
    response_headers: Option<serde_json::Value>,
    /// How long the destination took.
    #[serde(default)]
    duration_ms: u64,
}

/// The attempt as recorded.
#[derive(Serialize, ToSchema)]
pub(crate) struct LogRecorded {
    /// The delivery (`meta.id`).
    id: String,
    status_code: u16,
    duration_ms: u64,
    /// `delivered` for 2xx and 3xx, `failed` otherwise (resendable).
    state: &'static str,
}

/// `key:secret` from Basic, or `key.secret` from Bearer.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (key, secret) = text.split_once(':')?;
        return Some((key.to_owned(), secret.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let (key, secret) = rest.split_once('.')?;
        return Some((key.to_owned(), secret.to_owned()));
    }
    None
}

async fn record(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<LogBody>,
) -> Result<Json<LogRecorded>, ApiError> {
    let client = crate::client::client_ip(&state.config.trusted_proxies, peer, &headers);
    let (key, secret) = credentials(&headers).ok_or_else(ApiError::unauthorized)?;
    let token = crate::auth::authenticate_agent(&state, &key, &secret, client).await?;
    if token.mode == Some(AgentMode::Tunnel) {
        return Err(ApiError::not_found("delivery"));
    }
    if body
        .response_body
        .as_ref()
        .is_some_and(|b| b.len() > MAX_REPORTED_BODY)
    {
        return Err(ApiError::invalid_request(
            "response_body: at most 65536 bytes",
        ));
    }
    if body
        .response_headers
        .as_ref()
        .is_some_and(|h| h.to_string().len() > MAX_REPORTED_BODY)
    {
        return Err(ApiError::invalid_request(
            "response_headers: at most 65536 bytes",
        ));
    }
    let (event, output) = parse_delivery_ref(&id).ok_or_else(|| ApiError::not_found("delivery"))?;
    let group = group_of(token.key.as_str());
    let (_, deliveries) = state
        .store
        .event(&token.tenant, &event)
        .await
        .map_err(crate::api::or_not_found("delivery"))?;
    let ours = deliveries
        .iter()
        .any(|d| d.output == output && d.group.as_deref() == Some(group.as_str()));
    if !ours {
        return Err(ApiError::not_found("delivery"));
    }
    let ok = (200..400).contains(&body.status_code);
    let attempt = Attempt {
        at: store::clock::now_ms(),
        status: (body.status_code != 0).then_some(body.status_code),
        latency_ms: body.duration_ms,
        error: (!ok).then(|| "reported by the socket client".to_owned()),
    };
    let key = DeliveryKey {
        tenant: token.tenant,
        event,
        output,
        group: Some(group),
    };
    let next = if ok {
        Settle::Delivered
    } else {
        Settle::Failed
    };
    state
        .store
        .settle(&key, Some(attempt), next)
        .await
        .map_err(crate::api::or_not_found("delivery"))?;
    Ok(Json(LogRecorded {
        id,
        status_code: body.status_code,
        duration_ms: body.duration_ms,
        state: if ok { "delivered" } else { "failed" },
    }))
}
