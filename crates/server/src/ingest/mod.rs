//! Public ingest routes (DESIGN §3.1): `/v1/webhooks/{input_id}[/{*rest}]`
//! (Webhook Relay style) and the Radarboard-style named routes
//! `/api/webhooks/{name}` and `/api/t/{tenant}/webhooks/{name}`.
//!
//! Handlers here only find the input and shape the answer; the pipeline of
//! checks lives in [`pipeline`], bucket authentication in [`bucket_auth`], the
//! rate limit of step 5 in [`rate`], the server-wide budget of bodies being
//! read in [`budget`].
//!
//! Uses `catalog`, `client`, `verify` and the store's `EventLog` and
//! `Limiter`; `tunnel::proxy` shares its body limits. Nothing here may
//! depend on `api` or `deliver` (ingest stores; delivery reads the store).

pub(crate) mod bucket_auth;
mod budget;
mod pipeline;
mod rate;

pub(crate) use budget::BodyBudget;
pub(crate) use pipeline::stored_headers;
pub(crate) use rate::RefusalBlocks;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use model::{InputId, ResponsePolicy, TenantId};

use crate::catalog::Route;
use crate::error::{ApiError, Path};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/{input_id}", any(by_id))
        .route("/v1/webhooks/{input_id}/{*rest}", any(by_id_with_rest))
        .route("/api/webhooks/{name}", post(by_name_default))
        .route("/api/t/{tenant}/webhooks/{name}", post(by_name))
}

/// How the answer to an accepted request is shaped.
#[derive(Clone, Copy)]
enum RouteForm {
    /// `/v1/webhooks`: 200 with an empty body by default.
    WebhookRelay,
    /// `/api/...`: `{"received": true, "eventCount": N}` by default.
    Radarboard,
}

// A path that does not even decode names no input: step 1's answer.
async fn by_id(
    State(state): State<AppState>,
    path: Result<Path<String>, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match path {
        Ok(Path(input_id)) => ingest_by_id(state, &input_id, String::new(), peer, request).await,
        Err(_) => StatusCode::OK.into_response(),
    }
}

async fn by_id_with_rest(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match path {
        Ok(Path((input_id, _))) => {
            let rest = raw_suffix(request.uri().path());
            ingest_by_id(state, &input_id, rest, peer, request).await
        }
        Err(_) => StatusCode::OK.into_response(),
    }
}

/// The path after `/v1/webhooks/{input_id}` exactly as the sender wrote it
/// (percent-encoding kept), so the destination sees the same path and a
/// `%2F` stays a `%2F`.
pub(crate) fn raw_suffix(path: &str) -> String {
    let after_prefix = path.strip_prefix("/v1/webhooks/").unwrap_or(path);
    after_prefix
        .find('/')
        .map_or_else(String::new, |at| after_prefix[at..].to_owned())
}

async fn ingest_by_id(
    state: AppState,
    input_id: &str,
    path: String,
    peer: SocketAddr,
    request: Request,
) -> Response {
    // Step 1: an unknown input answers exactly like a known one, so ids
    // cannot be probed; nothing is read or stored.
    let Ok(id) = input_id.parse::<InputId>() else {
        return StatusCode::OK.into_response();
    };
    match state.catalog.by_id(state.store.as_ref(), &id).await {
        Ok(Some(route)) => accept(state, route, path, peer, request, RouteForm::WebhookRelay).await,
        Ok(None) => StatusCode::OK.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn by_name_default(
    State(state): State<AppState>,
    path: Result<Path<String>, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match path {
        Ok(Path(name)) => {
            ingest_by_name(state, TenantId::default_tenant(), &name, peer, request).await
        }
        Err(_) => unknown_integration().into_response(),
    }
}

async fn by_name(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let Ok(Path((tenant, name))) = path else {
        return unknown_integration().into_response();
    };
    let Ok(tenant) = tenant.parse::<TenantId>() else {
        return unknown_integration().into_response();
    };
    ingest_by_name(state, tenant, &name, peer, request).await
}

async fn ingest_by_name(
    state: AppState,
    tenant: TenantId,
    name: &str,
    peer: SocketAddr,
    request: Request,
) -> Response {
    match state
        .catalog
        .by_name(state.store.as_ref(), &tenant, name)
        .await
    {
        Ok(Some(route)) => {
            accept(
                state,
                route,
                String::new(),
                peer,
                request,
                RouteForm::Radarboard,
            )
            .await
        }
        Ok(None) => unknown_integration().into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn unknown_integration() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_integration",
        "no input with this name",
    )
}

async fn accept(
    state: AppState,
    route: std::sync::Arc<Route>,
    path: String,
    peer: SocketAddr,
    request: Request,
    form: RouteForm,
) -> Response {
    let accepted = match pipeline::run(&state, &route, path, peer, request).await {
        Ok(accepted) => accepted,
        Err(e) => return e.into_response(),
    };
    if let Some(handshake) = accepted.handshake {
        return handshake_answer(handshake);
    }
    // An input function's answer wins over any policy (DESIGN §14).
    if let Some(answer) = accepted.function_response {
        return function_answer(answer);
    }
    if let ResponsePolicy::Wait {
        timeout_ms,
        headers,
    } = &route.input.response
    {
        let timeout = std::time::Duration::from_millis(*timeout_ms);
        return match state.hub.waiters.wait(accepted.event, timeout).await {
            Some(answer) => destination_answer(answer, headers),
            None => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "destination_timeout",
                "no destination answered in time; the event is stored and will be delivered",
            )
            .into_response(),
        };
    }
    respond(&route.input.response, form, accepted.event_count)
}

/// Step 11 for a provider handshake: exactly what the provider documents.
fn handshake_answer(handshake: verify::Handshake) -> Response {
    let mut response = Response::new(axum::body::Body::from(handshake.body));
    *response.status_mut() = StatusCode::from_u16(handshake.status).unwrap_or(StatusCode::OK);
    if let Some(content_type) = handshake.content_type {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
    }
    response
}

/// Step 11 for an input function that set an answer: its status, headers
/// and body, checked by the sandbox (status 100..=599, no CR/LF).
fn function_answer(answer: functions::Response) -> Response {
    let mut response = Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            http::HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Step 11 for `wait`: the destination's status and body, its
/// `content-type` and the headers the input allow-lists, nothing else.
fn destination_answer(answer: crate::deliver::Answer, allowed: &[String]) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = status;
    for (name, value) in answer.headers {
        let keep = name.eq_ignore_ascii_case("content-type")
            || allowed.iter().any(|a| a.eq_ignore_ascii_case(&name));
        if !keep {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            http::HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Step 11: the input's response policy.
fn respond(policy: &ResponsePolicy, form: RouteForm, event_count: u32) -> Response {
    match (policy, form) {
        (
            ResponsePolicy::Static {
                status,
                headers,
                body,
            },
            _,
        ) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            let mut response = (status, body.clone()).into_response();
            for (name, value) in headers {
                // Validated at creation; a header that still fails to parse
                // is skipped rather than failing an accepted request.
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::try_from(name.as_str()),
                    http::HeaderValue::try_from(value.as_str()),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        (_, RouteForm::Radarboard) => axum::Json(Received {
            received: true,
            event_count,
        })
        .into_response(),
        (_, RouteForm::WebhookRelay) => StatusCode::OK.into_response(),
    }
}

/// What the `/api/...` routes answer an accepted request (DESIGN §3.1).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Received {
    /// Always true.
    received: bool,
    /// How many events the provider's payload held.
    event_count: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_suffix_keeps_its_encoding() {
        use super::raw_suffix;
        assert_eq!(raw_suffix("/v1/webhooks/abc/x/y%2Fz"), "/x/y%2Fz");
        assert_eq!(raw_suffix("/v1/webhooks/abc/"), "/");
        assert_eq!(raw_suffix("/v1/webhooks/abc"), "");
    }
}
