//! SendGrid signed event webhooks: ECDSA P-256 with SHA-256 over
//! `{X-Twilio-Email-Event-Webhook-Timestamp}{body}`, the DER signature
//! base64 in `X-Twilio-Email-Event-Webhook-Signature`, checked against the
//! verification key SendGrid shows (base64 of the DER public key; a PEM
//! block is accepted too), which is what the input's `secrets` hold. The
//! timestamp is signed, so the tolerance applies. The body is a JSON array
//! of events: the event count is its length and the event type the events'
//! common `event` (`delivered`), absent when they differ. No delivery id
//! (each event has its own `sg_event_id`). Depends on `p256` and the
//! crate's shared modules.

use base64::Engine as _;
use model::Secret;
use p256::ecdsa::signature::{DigestSigner as _, DigestVerifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use serde::Deserialize;
use sha2::Digest as _;

use crate::sign::{Outgoing, SignError, Signed};
use crate::signature::{BASE64, BASE64_PADDED};
use crate::{header, json, timestamp, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

#[derive(Deserialize)]
struct Event {
    event: Option<String>,
}

pub(crate) fn check_secret(secret: &str) -> Result<(), &'static str> {
    der(secret)
        .and_then(|d| VerifyingKey::from_public_key_der(&d).ok())
        .map(drop)
        .ok_or("a SendGrid verification key is a P-256 public key, base64 DER or PEM")
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    clock.check(timestamp::unix_secs(ts)?)?;
    let facts = json::value::<Vec<Event>>(req.body).and_then(|events| {
        let first = events.first().and_then(|e| e.event.as_deref());
        let common = first.filter(|f| events.iter().all(|e| e.event.as_deref() == Some(f)));
        let mut facts = Facts::checked(None, common)?;
        facts.event_count = Some(u32::try_from(events.len()).unwrap_or(u32::MAX));
        Ok(facts)
    });
    Ok(Preflight::new(None, facts))
}

/// The DER inside a base64 or PEM key as SendGrid shows it.
fn der(text: &str) -> Option<Vec<u8>> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_ascii_whitespace()))
        .collect();
    BASE64.decode(b64).ok()
}

fn digest(ts: &[u8], body: &[u8]) -> sha2::Sha256 {
    sha2::Sha256::new().chain_update(ts).chain_update(body)
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    let value = header::signature(req.headers, SIGNATURE)?;
    // A DER P-256 signature is at most 72 bytes, 96 in base64.
    let mut buf = [0u8; 80];
    let len = BASE64
        .decode_slice(value, &mut buf)
        .map_err(|_| Rejection::InvalidSignature("malformed signature"))?;
    let sig = Signature::from_der(&buf[..len])
        .map_err(|_| Rejection::InvalidSignature("malformed signature"))?;
    // ECDSA signatures are malleable in s; SendGrid's own verifiers accept
    // either form, so the low-s one is checked.
    let sig = sig.normalize_s().unwrap_or(sig);
    if secrets.is_empty() {
        return Err(Rejection::InvalidSignature("no secret configured"));
    }
    for secret in secrets {
        let Some(key) =
            der(secret.expose()).and_then(|d| VerifyingKey::from_public_key_der(&d).ok())
        else {
            continue;
        };
        if key.verify_digest(digest(ts, req.body), &sig).is_ok() {
            return Ok(());
        }
    }
    Err(Rejection::InvalidSignature("signature mismatch"))
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

fn signing_key(secret: &str) -> Result<SigningKey, SignError> {
    let der = der(secret).ok_or(SignError::InvalidKey(
        "a SendGrid private key is base64 or PEM",
    ))?;
    let secret = p256::SecretKey::from_pkcs8_der(&der)
        .or_else(|_| p256::SecretKey::from_sec1_der(&der))
        .map_err(|_| SignError::InvalidKey("not a P-256 private key (PKCS#8 or SEC1)"))?;
    Ok(SigningKey::from(secret))
}

/// `secret` is a P-256 private key, base64 DER (PKCS#8 or SEC1) or PEM.
pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let key = signing_key(secret)?;
    let ts = out.now_secs.to_string();
    let sig: Signature = key.sign_digest(digest(ts.as_bytes(), out.body));
    Ok(Signed::of(out)
        .header("X-Twilio-Email-Event-Webhook-Timestamp", ts)
        .header(
            "X-Twilio-Email-Event-Webhook-Signature",
            BASE64_PADDED.encode(sig.to_der().as_bytes()),
        ))
}

/// The base64 DER public key of a private key, for tests and `hookrelay
/// send`.
pub(crate) fn public_key(private: &str) -> Option<String> {
    use p256::pkcs8::EncodePublicKey as _;
    let key = signing_key(private).ok()?;
    let der = key.verifying_key().to_public_key_der().ok()?;
    Some(BASE64_PADDED.encode(der.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// sendgrid-go's `helpers/eventwebhook` test: key pair, timestamp,
    /// payload and signature (the payload is Go's `json.Marshal` of its map,
    /// keys sorted).
    const PUBLIC: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const PRIVATE: &str = "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const TS: i64 = 1_588_788_367;
    const SIG: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
    const PAYLOAD: &[u8] =
        br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;

    fn check(sig: &str, ts: &str, body: &[u8], keys: &[&str]) -> Result<(), Rejection> {
        let h = headers(&[(SIGNATURE, sig), (TIMESTAMP, ts)]);
        let secrets: Vec<Secret> = keys.iter().map(|&k| k.into()).collect();
        let req = Request {
            headers: &h,
            body,
            public_url: "",
        };
        verify(&req, &Preflight::default(), &secrets)
    }

    #[test]
    fn sendgrids_published_example() {
        assert_eq!(check(SIG, "1588788367", PAYLOAD, &[PUBLIC]), Ok(()));
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &PUBLIC[..64],
            &PUBLIC[64..]
        );
        assert_eq!(check(SIG, "1588788367", PAYLOAD, &["junk", &pem]), Ok(()));
        let mismatch = Err(Rejection::InvalidSignature("signature mismatch"));
        assert_eq!(
            check(SIG, "1588788367", b"this is not valid payload", &[PUBLIC]),
            mismatch
        );
        assert_eq!(check(SIG, "1588788368", PAYLOAD, &[PUBLIC]), mismatch);
        assert_eq!(
            check(
                &format!("{SIG}causing failure"),
                "1588788367",
                PAYLOAD,
                &[PUBLIC]
            ),
            Err(Rejection::InvalidSignature("malformed signature"))
        );
        assert_eq!(public_key(PRIVATE).as_deref(), Some(PUBLIC));
    }

    #[test]
    fn a_signed_batch_counts_its_events() {
        let body =
            br#"[{"event":"delivered","sg_event_id":"a"},{"event":"delivered","sg_event_id":"b"}]"#;
        let out = Outgoing {
            now_secs: TS,
            ..crate::sign::tests_outgoing(body)
        };
        let h = crate::conformance::owned_headers(&sign(PRIVATE, &out).unwrap().headers);
        let parsed = run_at(&Integration::Sendgrid, &h, body, &[PUBLIC], TS).unwrap();
        assert_eq!(parsed.event_count, 2);
        assert_eq!(parsed.event_type.as_deref(), Some("delivered"));
        let mixed = br#"[{"event":"open"},{"event":"click"}]"#;
        let out = Outgoing {
            now_secs: TS,
            ..crate::sign::tests_outgoing(mixed)
        };
        let h = crate::conformance::owned_headers(&sign(PRIVATE, &out).unwrap().headers);
        let parsed = run_at(&Integration::Sendgrid, &h, mixed, &[PUBLIC], TS).unwrap();
        assert_eq!((parsed.event_count, parsed.event_type), (2, None));
        assert!(matches!(
            sign("not a key", &out),
            Err(SignError::InvalidKey(_))
        ));
    }
}
