//! Provider URL-verification handshakes (DESIGN §13, §14): the requests a
//! provider sends to prove an endpoint is ours before it will deliver to it,
//! and the exact answer each one documents.
//!
//! | provider | request | answer |
//! | --- | --- | --- |
//! | slack | JSON `type: url_verification` with `challenge` | 200 `text/plain`, the challenge |
//! | zoom | JSON `event: endpoint.url_validation`, `payload.plainToken` | 200 JSON `{plainToken, encryptedToken}`, the token's hex HMAC-SHA256 under the secret token |
//! | twitch | header `Twitch-Eventsub-Message-Type: webhook_callback_verification`, `challenge` | 200 `text/plain`, the challenge |
//! | discord | interaction `{"type":1}` (PING) | 200 JSON `{"type":1}` (PONG) |
//! | discord | webhook event `{"type":0}` (PING) | 204, no body |
//!
//! Every one of them is signed like the provider's events, so the caller
//! asks only after [`Integration::verify`] succeeded: an unsigned request
//! never gets an answer computed from the secret. No other integration of
//! ours has a handshake: GitHub's `ping`, Intercom's `ping` and the rest
//! are ordinary events that a 200 satisfies. A handshake whose challenge is
//! missing, not text or longer than [`MAX_CHALLENGE_LEN`] is not answered
//! here and goes on as an ordinary event.
//!
//! Depends on the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::json::Scalar;
use crate::{json, signature, Integration, Parsed, Preflight, Request};

/// Longest challenge echoed back. Slack's are 52 characters, Twitch's a
/// few dozen, Zoom's plain tokens 22: anything near this is not a
/// provider's.
pub const MAX_CHALLENGE_LEN: usize = 256;

/// The answer to a handshake, to send as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the answer; `None` with an empty body.
    pub content_type: Option<&'static str>,
    /// The exact bytes the provider expects.
    pub body: Vec<u8>,
}

impl Handshake {
    fn text(challenge: String) -> Handshake {
        Handshake {
            status: 200,
            content_type: Some("text/plain"),
            body: challenge.into_bytes(),
        }
    }

    fn json(body: Vec<u8>) -> Handshake {
        Handshake {
            status: 200,
            content_type: Some("application/json"),
            body,
        }
    }
}

impl Integration {
    /// The answer to a verified request that is this provider's
    /// URL-verification handshake, or `None` for every other request.
    /// `parsed` is step 9's result for the same request; `secrets` are the
    /// input's (Zoom's answer is keyed by the secret that verified).
    pub fn handshake(
        &self,
        req: &Request<'_>,
        parsed: &Parsed,
        secrets: &[Secret],
    ) -> Option<Handshake> {
        match self {
            Integration::Slack if parsed.event_type.as_deref() == Some("url_verification") => {
                challenge(req.body).map(Handshake::text)
            }
            Integration::Twitch if twitch_verification(req) => {
                challenge(req.body).map(Handshake::text)
            }
            Integration::Zoom
                if parsed.event_type.as_deref() == Some("endpoint.url_validation") =>
            {
                zoom(req, secrets)
            }
            Integration::Discord => discord(req.body),
            _ => None,
        }
    }
}

fn bounded(value: String) -> Option<String> {
    (!value.is_empty() && value.len() <= MAX_CHALLENGE_LEN).then_some(value)
}

/// The body's top-level `challenge` (Slack, Twitch).
fn challenge(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Challenge {
        challenge: Option<String>,
    }
    json::object::<Challenge>(body)
        .ok()?
        .challenge
        .and_then(bounded)
}

fn twitch_verification(req: &Request<'_>) -> bool {
    req.headers
        .get("twitch-eventsub-message-type")
        .is_some_and(|v| v.as_bytes() == b"webhook_callback_verification")
}

fn zoom(req: &Request<'_>, secrets: &[Secret]) -> Option<Handshake> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        plain_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct Validation {
        payload: Option<Payload>,
    }
    let token = json::object::<Validation>(req.body)
        .ok()?
        .payload?
        .plain_token
        .and_then(bounded)?;
    // The secret that signed this request: the one Zoom keys the answer by
    // (with rotation, not necessarily the newest).
    let preflight = Preflight::default();
    let secret = secrets
        .iter()
        .find(|s| crate::zoom::verify(req, &preflight, std::slice::from_ref(*s)).is_ok())?;
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.expose().as_bytes(),
        &[token.as_bytes()],
    );
    let body = serde_json::json!({
        "plainToken": token,
        "encryptedToken": mac.encode(SignatureEncoding::Hex),
    });
    Some(Handshake::json(body.to_string().into_bytes()))
}

fn discord(body: &[u8]) -> Option<Handshake> {
    #[derive(Deserialize)]
    struct Ping {
        #[serde(rename = "type")]
        kind: Option<Scalar>,
        event: Option<serde::de::IgnoredAny>,
    }
    let ping = json::object::<Ping>(body).ok()?;
    match (ping.kind.and_then(|k| k.as_i64()), ping.event) {
        // An interaction PING: answered with a PONG.
        (Some(1), None) => Some(Handshake::json(br#"{"type":1}"#.to_vec())),
        // A webhook-events PING: acknowledged with 204 and no body.
        (Some(0), None) => Some(Handshake {
            status: 204,
            content_type: None,
            body: Vec::new(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
