//! The ingest pipeline of DESIGN §3.1, steps 2 to 10, cheapest first. Step 1
//! (finding the input) and step 11 (the answer) are the caller's.
//!
//! Nothing is stored until every check has passed, and the dedup set learns
//! a delivery id only with the stored event (step 10), so a request that
//! fails its signature can never poison it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use model::{EventBody, NewEvent};
use verify::Rejection;

use super::budget::{BodyBudget, Held};
use super::{bucket_auth, rate};
use crate::catalog::Route;
use crate::error::ApiError;
use crate::state::AppState;

/// What an accepted request produced.
pub(super) struct Accepted {
    pub(super) event_count: u32,
    pub(super) event: model::EventId,
    /// The provider handshake's answer, which replaces the input's policy.
    pub(super) handshake: Option<verify::Handshake>,
    /// The answer the input's function set, which replaces the policy too.
    pub(super) function_response: Option<functions::Response>,
}

/// What the input's function made of a verified request (DESIGN §9).
#[derive(Default)]
struct Shaped {
    /// The changed request; `None` when it changed nothing or failed.
    forwarded: Option<model::Forwarded>,
    response: Option<functions::Response>,
    stopped: bool,
    error: Option<String>,
}

pub(super) async fn run(
    state: &AppState,
    route: &Route,
    path: String,
    peer: SocketAddr,
    request: Request,
) -> Result<Accepted, ApiError> {
    let input = &route.input;
    check_enabled(state, route)?;
    let (parts, body) = request.into_parts();
    // Held until this function returns: the body's bytes count against the
    // server-wide budget while they are read, checked and stored.
    let (mut body, _held) = read_body(
        body,
        &parts.headers,
        input.effective_body_limit(),
        state.config.body_read_timeout,
        &state.body_budget,
    )
    .await?;
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(integration) = &route.integration {
        if !integration.accepts_content_type(content_type) {
            return Err(rejection(Rejection::UnsupportedMediaType));
        }
    }
    let client_ip = crate::client::client_ip(&state.config.trusted_proxies, peer, &parts.headers);
    let gate = rate::check(state, route, client_ip).await?;
    let raw_query = parts.uri.query().unwrap_or("");
    let (verdict, handshake) = match check_sender(state, route, &parts, &body).await {
        Ok(checked) => checked,
        Err(refusal) => return Err(rate::refused(state, &gate, refusal).await),
    };

    let ephemeral = route.bucket.ephemeral;
    let event_count = verdict.as_ref().map_or(1, |p| p.event_count);
    let keeps_auth_header = matches!(route.bucket.auth, model::BucketAuth::None);
    // Handshakes are answered before the function runs (DESIGN §13).
    let shaped = match (&input.function_id, &handshake) {
        (Some(id), None) => {
            let headers = stored_headers(&parts.headers, keeps_auth_header);
            // Functions work on text (DESIGN §9): a value that is not UTF-8
            // is seen lossily, and kept byte-exact unless the function
            // changes the headers.
            let original = functions::Request {
                method: parts.method.as_str().to_owned(),
                path: path.clone(),
                query: bucket_auth::strip_query_token(raw_query),
                headers: model::headers_lossy(&headers),
                body: body.clone(),
            };
            shape(state, route, id, original, &headers).await
        }
        _ => Shaped::default(),
    };
    let event = NewEvent {
        tenant: input.tenant.clone(),
        bucket: input.bucket.clone(),
        input: input.id,
        integration: input.integration,
        method: parts.method.as_str().to_owned(),
        path,
        query: if ephemeral {
            String::new()
        } else {
            bucket_auth::strip_query_token(raw_query)
        },
        headers: if ephemeral {
            Vec::new()
        } else {
            stored_headers(&parts.headers, keeps_auth_header)
        },
        // The one buffer read in step 3 moves into the event (or, for an
        // ephemeral bucket, into the in-memory hold below): never copied.
        body: if ephemeral {
            EventBody::Omitted {
                size: body.len() as u64,
            }
        } else {
            EventBody::Stored(std::mem::take(&mut body))
        },
        client_ip: client_ip.to_string(),
        delivery_id: verdict.as_ref().and_then(|p| p.delivery_id.clone()),
        event_type: verdict.as_ref().and_then(|p| p.event_type.clone()),
        event_count,
        verified: verdict.is_some(),
        marks: model::EventMarks {
            handshake: handshake.is_some(),
            stopped: shaped.stopped,
            function_error: shaped.error.clone(),
        },
        forwarded: if ephemeral {
            None
        } else {
            shaped.forwarded.clone()
        },
        dedup_window_ms: state.config.dedup_window.as_millis() as i64,
    };
    let (bucket, size) = (event.bucket.clone(), event.body.size());
    match state.store.append(event).await {
        Ok(appended) => {
            // Ids and sizes only: payloads, headers and query never reach a
            // log, at any level (DESIGN §6, §7).
            tracing::debug!(
                event_id = %appended.id,
                %bucket,
                input = %input.id,
                size,
                ephemeral,
                "event stored"
            );
            state.metrics.event_stored();
            if ephemeral && handshake.is_none() && !shaped.stopped {
                // In memory only, for the agents connected now (DESIGN §6),
                // as the input's function left it.
                let held = match shaped.forwarded {
                    Some(f) => crate::deliver::EphemeralPayload {
                        headers: f.headers,
                        query: f.query,
                        body: bytes::Bytes::from(f.body),
                    },
                    None => crate::deliver::EphemeralPayload {
                        headers: stored_headers(&parts.headers, keeps_auth_header),
                        query: bucket_auth::strip_query_token(raw_query),
                        body: bytes::Bytes::from(body),
                    },
                };
                state.hub.ephemeral.hold(appended.id, held);
            }
            Ok(Accepted {
                event_count,
                event: appended.id,
                handshake,
                function_response: shaped.response,
            })
        }
        Err(store::Error::Duplicate) => Err(replay()),
        Err(e) => Err(e.into()),
    }
}

/// Runs the input's function on a verified request (DESIGN §9). A
/// function that fails (gone, error, time or memory) leaves the request
/// as it was and says why; the event is never lost to it.
async fn shape(
    state: &AppState,
    route: &Route,
    id: &model::FunctionId,
    original: functions::Request,
    original_headers: &[(String, Vec<u8>)],
) -> Shaped {
    let input = &route.input;
    let loaded = match state
        .scripts
        .load(state.store.as_ref(), &input.tenant, id)
        .await
    {
        Ok(loaded) => loaded,
        Err(error) => {
            return Shaped {
                error: Some(error),
                ..Default::default()
            }
        }
    };
    let metadata = vec![
        ("tenant_id", input.tenant.to_string()),
        ("bucket_id", input.bucket.to_string()),
        ("bucket_name", route.bucket.name.clone()),
        ("input_id", input.id.to_string()),
        ("input_name", input.name.clone().unwrap_or_default()),
    ];
    let outcome = state
        .scripts
        .run(&loaded, original, metadata, functions::Attachment::Input)
        .await;
    if let Some(error) = outcome.error {
        // Ids only: the message may quote what the script saw.
        tracing::info!(input = %input.id, function = %id, "input function failed");
        return Shaped {
            error: Some(error),
            ..Default::default()
        };
    }
    let forwarded = outcome.changed.then(|| {
        let r = outcome.request;
        model::Forwarded {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: model::headers_from_text(r.headers, original_headers),
            body: r.body,
        }
    });
    Shaped {
        forwarded,
        response: outcome.response,
        stopped: outcome.stop_forwarding,
        error: None,
    }
}

/// Steps 6 to 9: bucket auth, replay, signature and parse, and the
/// provider handshake's answer when the request is one. Each refusal here
/// is one that a rate limit counting refusals counts.
async fn check_sender(
    state: &AppState,
    route: &Route,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<(Option<verify::Parsed>, Option<verify::Handshake>), ApiError> {
    let input = &route.input;
    bucket_auth::check(
        &route.bucket.auth,
        &parts.headers,
        parts.uri.query().unwrap_or(""),
    )?;
    let Some(integration) = &route.integration else {
        return Ok((None, None));
    };
    let now_ms = store::clock::now_ms();
    // Twilio and Square sign the URL they called: the public URL, not
    // whatever Host this request arrived with (DESIGN §8).
    let public_url = format!(
        "{}{}",
        state.config.public_url,
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let req = verify::Request {
        headers: &parts.headers,
        body,
        public_url: &public_url,
    };
    let preflight = integration
        .preflight(&req, now_ms / 1000, input.timestamp_tolerance_seconds)
        .map_err(rejection)?;
    if let Some(id) = &preflight.delivery_id {
        if state
            .store
            .delivery_seen(&input.tenant, &input.id, id, now_ms)
            .await?
        {
            return Err(replay());
        }
    }
    integration
        .verify(&req, &preflight, &input.secrets)
        .map_err(rejection)?;
    let parsed = integration.parse(&req, preflight).map_err(rejection)?;
    // Only now, signed and parsed: never an answer computed from the
    // secret for an unsigned request (DESIGN §13).
    let handshake = input
        .handshakes
        .then(|| integration.handshake(&req, &parsed, &input.secrets))
        .flatten();
    Ok((Some(parsed), handshake))
}

/// Step 2: the server, tenant, bucket and input kill switches.
fn check_enabled(state: &AppState, route: &Route) -> Result<(), ApiError> {
    let input = &route.input;
    let disabled_by_env = input.tenant.as_str() == "default"
        && input
            .name
            .as_ref()
            .is_some_and(|n| state.config.disabled_inputs.contains(n));
    let enabled = state.config.enabled
        && route.tenant_enabled
        && route.bucket.enabled
        && input.enabled
        && !disabled_by_env;
    if !enabled {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "this input is disabled",
        ));
    }
    // An integration whose configuration no longer builds fails closed.
    if input.integration.is_some() && route.integration.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "this input's integration is misconfigured",
        ));
    }
    Ok(())
}

/// Step 3: reads at most `limit` bytes, within the read timeout, into one
/// buffer that the later steps borrow and the stored event takes over; the
/// bytes are counted against the server-wide `budget` as they arrive.
async fn read_body(
    body: Body,
    headers: &http::HeaderMap,
    limit: u64,
    timeout: Duration,
    budget: &BodyBudget,
) -> Result<(Vec<u8>, Held), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds this input's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut held = budget.admit(declared)?;
    match tokio::time::timeout(timeout, collect(body, declared, limit, &mut held)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the body was not received in time",
        )),
        Ok(Ok(Collected::Whole(buf))) => Ok((buf, held)),
        Ok(Ok(Collected::TooLarge)) => Err(too_large()),
        Ok(Ok(Collected::OverBudget(e))) => Err(e),
        Ok(Err(_)) => Err(ApiError::invalid_request(
            "the request body could not be read",
        )),
    }
}

/// How reading a body ended, when the connection did not fail.
enum Collected {
    Whole(Vec<u8>),
    /// More than the input's limit arrived.
    TooLarge,
    /// The server-wide budget had no room for the next bytes.
    OverBudget(ApiError),
}

/// Appends the body's frames to one buffer: sized from `Content-Length`
/// when declared (within `limit`), so the bytes are copied once, from the
/// connection's buffer into this one. The capacity reserved for a declared
/// length is only address space until bytes land in it, which is why the
/// budget counts arrivals, not the declaration.
async fn collect(
    mut body: Body,
    declared: Option<u64>,
    limit: u64,
    held: &mut Held,
) -> Result<Collected, axum::Error> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let len = buf.len() + data.len();
            if len as u64 > limit {
                return Ok(Collected::TooLarge);
            }
            if let Err(e) = held.cover(len, limit as usize) {
                return Ok(Collected::OverBudget(e));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Collected::Whole(buf))
}

/// Headers as stored with the event: names lower-case (hyper's), values
/// the bytes received, UTF-8 or not (DESIGN §8). The bucket's own
/// `Authorization` credential is dropped.
pub(crate) fn stored_headers(
    headers: &http::HeaderMap,
    keep_authorization: bool,
) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| keep_authorization || *name != http::header::AUTHORIZATION)
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

fn replay() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "replay",
        "this delivery was already accepted or its timestamp is outside the tolerance",
    )
}

fn rejection(r: Rejection) -> ApiError {
    match r {
        Rejection::UnsupportedMediaType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "this input does not accept this content type",
        ),
        Rejection::StaleTimestamp => replay(),
        Rejection::InvalidSignature(reason) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            format!("signature verification failed: {reason}"),
        ),
        Rejection::InvalidPayload(reason) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            format!("the payload could not be parsed: {reason}"),
        ),
    }
}
