//! The `Deliver` message of a due delivery: the event as the agent will
//! send it, the output's URL, timeout and extra headers.

use proto::pb;
use store::DueDelivery;

use super::rules::Payload;

/// The `Deliver` for one due delivery.
pub(super) fn deliver(
    delivery_id: &str,
    due: &DueDelivery,
    payload: Payload,
    want_response: bool,
) -> proto::ServerMessage {
    let event = &due.event;
    let headers = |pairs: Vec<(String, Vec<u8>)>| {
        pairs
            .into_iter()
            .map(|(name, value)| pb::Header::from_bytes(name, value))
            .collect()
    };
    let extra = due
        .output
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .collect();
    proto::server_message::Kind::Deliver(pb::Deliver {
        delivery_id: delivery_id.to_owned(),
        event: Some(pb::Event {
            id: event.id.to_string(),
            method: payload.method,
            path: payload.path,
            query: payload.query,
            headers: headers(payload.headers),
            body: payload.body.into(),
            received_at: event.received_at,
            bucket: event.bucket.to_string(),
            input: event.input.to_string(),
        }),
        output_id: due.output.id.to_string(),
        url: due.output.url.clone(),
        attempt: due.tries + 1,
        want_response,
        timeout_ms: u32::try_from(due.output.timeout_ms).unwrap_or(u32::MAX),
        headers: headers(extra),
    })
    .into()
}
