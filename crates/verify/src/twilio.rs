//! Twilio webhooks: `X-Twilio-Signature`, base64 HMAC-SHA1 with the
//! account's auth token of the URL Twilio called followed, for a form body,
//! by every parameter's name and value, sorted by name (then value). A JSON
//! body is not in the MAC; instead the URL carries `bodySHA256=<hex>` of it
//! and the relay checks that hash. The URL is the relay's, rebuilt from
//! `--public-url` plus the request's path and query (DESIGN §8), so
//! `--public-url` must be what is configured in Twilio. Like Twilio's own
//! helper libraries, the URL is also tried with the scheme's default port
//! added or removed. Delivery id from `I-Twilio-Idempotency-Token`; event
//! type from `MessageStatus`, `SmsStatus`, `CallStatus` or `EventType` (form),
//! or `type` (JSON; arrays of events are counted). Depends on the crate's
//! shared modules only.

use std::borrow::Cow;

use http::header::CONTENT_TYPE;
use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;
use sha2::Digest as _;
use subtle::ConstantTimeEq;

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{
    form, header, json, media, signature, Clock, Facts, Parsed, Preflight, Rejection, Request,
};

const SIGNATURE: &str = "x-twilio-signature";
const IDEMPOTENCY: &str = "i-twilio-idempotency-token";
/// Form fields that name what happened, in order of preference.
const STATUS_FIELDS: [&str; 4] = ["MessageStatus", "SmsStatus", "CallStatus", "EventType"];

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonBody {
    One(Typed),
    Many(Vec<Typed>),
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| media::is(ct, media::FORM))
}

fn facts(req: &Request<'_>) -> Result<Facts, Rejection> {
    if is_form(req.headers) {
        let status = STATUS_FIELDS.iter().find_map(|f| form::field(req.body, f));
        let status = status
            .map(String::from_utf8)
            .transpose()
            .map_err(|_| Rejection::InvalidPayload("status is not UTF-8"))?;
        return Facts::checked(None, status.as_deref());
    }
    match json::value::<JsonBody>(req.body)? {
        JsonBody::One(t) => Facts::checked(None, t.kind.as_deref()),
        JsonBody::Many(list) => {
            let mut facts = Facts::checked(None, list.first().and_then(|t| t.kind.as_deref()))?;
            facts.event_count = Some(u32::try_from(list.len()).unwrap_or(u32::MAX));
            Ok(facts)
        }
    }
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let id = header::token(
        req.headers,
        IDEMPOTENCY,
        "malformed I-Twilio-Idempotency-Token",
    )?;
    Ok(Preflight::new(id, facts(req)))
}

/// The form's parameters, decoded and sorted as Twilio sorts them.
fn sorted_params(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            (form::decode(k), form::decode(v))
        })
        .collect();
    params.sort();
    params
}

/// The value of the `bodySHA256` query parameter of `url`.
fn body_sha256_param(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("bodySHA256="))
}

/// `url` with the scheme's default port added when absent, or removed when
/// present; `None` for any other port or an unknown scheme.
fn toggled_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = &authority[host_start..];
    let new_authority = if let Some(bare) = host.strip_suffix(port) {
        format!("{}{bare}", &authority[..host_start])
    } else if host.ends_with(']') || !host.contains(':') {
        format!("{authority}{port}")
    } else {
        return None;
    };
    Some(format!("{scheme}://{new_authority}{tail}"))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let value = header::signature(req.headers, SIGNATURE)?;
    let expected = signature::decode(value, SignatureEncoding::Base64, HmacAlgorithm::Sha1)?;
    let params = if is_form(req.headers) {
        sorted_params(req.body)
    } else {
        let claimed = body_sha256_param(req.public_url)
            .ok_or(Rejection::InvalidSignature("missing bodySHA256"))?;
        let mut want = [0u8; 32];
        hex::decode_to_slice(claimed, &mut want)
            .map_err(|_| Rejection::InvalidSignature("malformed bodySHA256"))?;
        let got = sha2::Sha256::digest(req.body);
        if !bool::from(got.as_slice().ct_eq(&want)) {
            return Err(Rejection::InvalidSignature("body hash mismatch"));
        }
        Vec::new()
    };
    let check = |url: &str| {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
        parts.push(url.as_bytes());
        for (k, v) in &params {
            parts.push(k);
            parts.push(v);
        }
        signature::check(HmacAlgorithm::Sha1, secrets, &parts, &expected)
    };
    match check(req.public_url) {
        Err(Rejection::InvalidSignature("signature mismatch")) => {
            match toggled_port(req.public_url) {
                Some(url) => check(&url),
                None => Err(Rejection::InvalidSignature("signature mismatch")),
            }
        }
        other => other,
    }
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mut signed = Signed::of(out);
    let params = if media::is(out.content_type, media::FORM) {
        sorted_params(out.body)
    } else {
        let hash = hex::encode(sha2::Sha256::digest(out.body));
        let sep = if out.url.contains('?') { '&' } else { '?' };
        signed.url = format!("{}{sep}bodySHA256={hash}", out.url);
        Vec::new()
    };
    let mut parts: Vec<Cow<'_, [u8]>> = vec![Cow::Borrowed(signed.url.as_bytes())];
    for (k, v) in &params {
        parts.push(Cow::Borrowed(k));
        parts.push(Cow::Borrowed(v));
    }
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_ref()).collect();
    let mac = signature::hmac(HmacAlgorithm::Sha1, secret.as_bytes(), &parts);
    Ok(signed
        .header("X-Twilio-Signature", mac.encode(SignatureEncoding::Base64))
        .header("I-Twilio-Idempotency-Token", fresh_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_url};
    use crate::Integration;

    const FORM: &str = "application/x-www-form-urlencoded";
    /// twilio-python's request validator tests (token, URL, parameters and
    /// expected signatures).
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const PARAMS: &[u8] = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";

    #[test]
    fn twilios_published_form_example() {
        let h = headers(&[
            (SIGNATURE, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            ("content-type", FORM),
        ]);
        assert!(run_url(&Integration::Twilio, &h, PARAMS, &["rotated", TOKEN], URL).is_ok());
        // The same, received on an explicit :443 (Twilio's helpers strip it).
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(run_url(&Integration::Twilio, &h, PARAMS, &[TOKEN], with_port).is_ok());
        // Twilio's docs: the same call with +12349013030 as caller.
        let docs = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        let h = headers(&[
            (SIGNATURE, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            ("content-type", FORM),
        ]);
        assert!(run_url(&Integration::Twilio, &h, docs, &[TOKEN], URL).is_ok());
        assert_eq!(
            run_url(
                &Integration::Twilio,
                &h,
                docs,
                &[TOKEN],
                "https://mycompany.com/other"
            )
            .map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
        let out = Outgoing {
            url: URL,
            content_type: FORM,
            ..crate::sign::tests_outgoing(docs)
        };
        assert_eq!(
            sign(TOKEN, &out).unwrap().headers[0].1,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn repeated_parameters_sort_by_value() {
        let body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        let h = headers(&[
            (SIGNATURE, "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
            ("content-type", FORM),
        ]);
        assert!(run_url(&Integration::Twilio, &h, body, &[TOKEN], URL).is_ok());
    }

    #[test]
    fn twilios_published_json_example() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = format!(
            "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let h = headers(&[
            (SIGNATURE, "a9nBmqA0ju/hNViExpshrM61xv4="),
            ("content-type", "application/json"),
        ]);
        assert!(run_url(&Integration::Twilio, &h, body, &[TOKEN], &url).is_ok());
        assert_eq!(
            run_url(
                &Integration::Twilio,
                &h,
                br#"{"property": "value", "boolean": false}"#,
                &[TOKEN],
                &url
            )
            .map(drop),
            Err(Rejection::InvalidSignature("body hash mismatch"))
        );
        assert_eq!(
            run_url(&Integration::Twilio, &h, body, &[TOKEN], URL).map(drop),
            Err(Rejection::InvalidSignature("missing bodySHA256"))
        );
        let bad = format!("{URL}&bodySHA256=zz");
        assert_eq!(
            run_url(&Integration::Twilio, &h, body, &[TOKEN], &bad).map(drop),
            Err(Rejection::InvalidSignature("malformed bodySHA256"))
        );
        let out = Outgoing {
            url: URL,
            ..crate::sign::tests_outgoing(body)
        };
        let signed = sign(TOKEN, &out).unwrap();
        assert_eq!(signed.url, url);
        assert_eq!(signed.headers[0].1, "a9nBmqA0ju/hNViExpshrM61xv4=");
    }

    #[test]
    fn event_types_and_counts() {
        let body = b"MessageSid=SM1&SmsStatus=received&MessageStatus=delivered";
        let out = Outgoing {
            url: URL,
            content_type: FORM,
            ..crate::sign::tests_outgoing(body)
        };
        let mut pairs = sign(TOKEN, &out).unwrap().headers;
        pairs.push(("content-type".into(), FORM.into()));
        let h = crate::conformance::owned_headers(&pairs);
        let parsed = run_url(&Integration::Twilio, &h, body, &[TOKEN], URL).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("delivered"));
        assert!(parsed.delivery_id.is_some());

        let batch = br#"[{"type":"com.twilio.messaging.message.delivered"},{"type":"x"}]"#;
        let out = Outgoing {
            url: URL,
            ..crate::sign::tests_outgoing(batch)
        };
        let signed = sign(TOKEN, &out).unwrap();
        let mut pairs = signed.headers;
        pairs.push(("content-type".into(), "application/json".into()));
        let h = crate::conformance::owned_headers(&pairs);
        let parsed = run_url(&Integration::Twilio, &h, batch, &[TOKEN], &signed.url).unwrap();
        assert_eq!(parsed.event_count, 2);
        assert_eq!(
            parsed.event_type.as_deref(),
            Some("com.twilio.messaging.message.delivered")
        );
    }

    #[test]
    fn port_toggling() {
        assert_eq!(
            toggled_port("https://a.example/x").as_deref(),
            Some("https://a.example:443/x")
        );
        assert_eq!(
            toggled_port("https://a.example:443?q").as_deref(),
            Some("https://a.example?q")
        );
        assert_eq!(
            toggled_port("http://u:p@a.example:80/").as_deref(),
            Some("http://u:p@a.example/")
        );
        assert_eq!(
            toggled_port("http://[::1]/").as_deref(),
            Some("http://[::1]:80/")
        );
        assert_eq!(toggled_port("https://a.example:8443/"), None);
        assert_eq!(toggled_port("ftp://a.example/"), None);
        assert_eq!(toggled_port("garbage"), None);
    }
}
