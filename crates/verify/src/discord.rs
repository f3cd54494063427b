//! Discord interactions and webhook events: Ed25519 over
//! `{X-Signature-Timestamp}{body}`, the signature hex in
//! `X-Signature-Ed25519`, checked against the application's public key (hex,
//! as the developer portal shows it), which is what the input's `secrets`
//! hold; several keys are tried in order. The timestamp is signed, so the
//! tolerance applies. Delivery id from the body's `id` (interactions); event
//! type from `event.type` (webhook events), else the interaction `type`
//! named (`ping`, `application_command`, ...). JSON bodies. Depends on
//! `ed25519-dalek` and the crate's shared modules.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use model::Secret;
use serde::Deserialize;

use crate::json::Scalar;
use crate::sign::{Outgoing, SignError, Signed};
use crate::{header, json, timestamp, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-signature-ed25519";
const TIMESTAMP: &str = "x-signature-timestamp";

#[derive(Deserialize)]
struct Payload {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<Scalar>,
    event: Option<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Interaction types by number (Discord's `InteractionType`).
fn interaction_name(n: i64) -> Option<&'static str> {
    Some(match n {
        1 => "ping",
        2 => "application_command",
        3 => "message_component",
        4 => "application_command_autocomplete",
        5 => "modal_submit",
        _ => return None,
    })
}

pub(crate) fn check_secret(secret: &str) -> Result<(), &'static str> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(secret.trim(), &mut key)
        .ok()
        .and_then(|()| VerifyingKey::from_bytes(&key).ok())
        .map(drop)
        .ok_or("a Discord public key is 64 hex digits, from the developer portal")
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    clock.check(timestamp::unix_secs(ts)?)?;
    let facts = json::object::<Payload>(req.body).and_then(|p| {
        let kind = match (p.event.and_then(|e| e.kind), p.kind) {
            (Some(event), _) => Some(event),
            (None, Some(Scalar::Text(t))) => Some(t),
            (None, Some(n)) => n.as_i64().and_then(interaction_name).map(str::to_owned),
            (None, None) => None,
        };
        Facts::checked(p.id.as_deref(), kind.as_deref())
    });
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    let value = header::signature(req.headers, SIGNATURE)?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(value, &mut sig)
        .map_err(|_| Rejection::InvalidSignature("malformed signature"))?;
    let sig = Signature::from_bytes(&sig);
    if secrets.is_empty() {
        return Err(Rejection::InvalidSignature("no secret configured"));
    }
    let mut message = Vec::with_capacity(ts.len() + req.body.len());
    message.extend_from_slice(ts);
    message.extend_from_slice(req.body);
    for secret in secrets {
        let mut key = [0u8; 32];
        if hex::decode_to_slice(secret.expose().trim(), &mut key).is_err() {
            continue;
        }
        let Ok(key) = VerifyingKey::from_bytes(&key) else {
            continue;
        };
        // Strict: refuses small-order keys and non-canonical signatures, as
        // libsodium (which Discord's own examples use) does.
        if key.verify_strict(&message, &sig).is_ok() {
            return Ok(());
        }
    }
    Err(Rejection::InvalidSignature("signature mismatch"))
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

/// `secret` is the application's private key: the 32-byte Ed25519 seed, hex.
pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(secret.trim(), &mut seed)
        .map_err(|_| SignError::InvalidKey("a Discord private key is 64 hex digits"))?;
    let key = SigningKey::from_bytes(&seed);
    let ts = out.now_secs.to_string();
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(out.body);
    let sig = key.sign(&message);
    Ok(Signed::of(out)
        .header("X-Signature-Timestamp", ts)
        .header("X-Signature-Ed25519", hex::encode(sig.to_bytes())))
}

/// The hex public key of a hex private key, for tests and `hookrelay send`.
pub(crate) fn public_key(private_hex: &str) -> Option<String> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(private_hex.trim(), &mut seed).ok()?;
    Some(hex::encode(
        SigningKey::from_bytes(&seed).verifying_key().to_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Discord publishes no signed example. The key pair is RFC 8032 §7.1
    /// test 1; the signature was computed independently, once, with
    /// Python's `cryptography` (`Ed25519PrivateKey.sign(b"1700000000" + BODY)`).
    const PRIVATE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const BODY: &[u8] = br#"{"id":"1234567890","type":1,"application_id":"11"}"#;
    const SIG: &str = "e4049a8e872fc7e82270c9b0937853f74c6878ab4f381e59b3e55b730ddca52615cd2e7d3ac04a3e4f8c50e58ed459a62cd2fe19d60f318db9a0129d4711c70f";

    #[test]
    fn independent_example() {
        assert_eq!(public_key(PRIVATE).as_deref(), Some(PUBLIC));
        let h = headers(&[(SIGNATURE, SIG), (TIMESTAMP, "1700000000")]);
        let other = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
        let parsed = run_at(
            &Integration::Discord,
            &h,
            BODY,
            &["not hex", other, PUBLIC],
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("1234567890"));
        assert_eq!(parsed.event_type.as_deref(), Some("ping"));
        assert_eq!(
            run_at(&Integration::Discord, &h, BODY, &[other], 1_700_000_000).map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
        let out = Outgoing {
            now_secs: 1_700_000_000,
            ..crate::sign::tests_outgoing(BODY)
        };
        assert_eq!(sign(PRIVATE, &out).unwrap().headers[1].1, SIG);
    }

    #[test]
    fn webhook_events_name_their_type() {
        let body = br#"{"version":1,"application_id":"11","type":1,"event":{"type":"APPLICATION_AUTHORIZED","data":{}}}"#;
        let out = Outgoing {
            now_secs: 1_700_000_000,
            ..crate::sign::tests_outgoing(body)
        };
        let h = crate::conformance::owned_headers(&sign(PRIVATE, &out).unwrap().headers);
        let parsed = run_at(&Integration::Discord, &h, body, &[PUBLIC], 1_700_000_000).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("APPLICATION_AUTHORIZED"));
    }
}
