//! Bounded reads of request headers: signature values and the short tokens
//! (delivery ids, event types) that are stored and used as dedup keys.
//! Lookups by `&str` name allocate nothing. Depends on `http` only.

use http::header::AsHeaderName;
use http::HeaderMap;

use crate::{Rejection, MAX_ID_LEN, MAX_SIGNATURE_HEADER_LEN};

/// The raw bytes of a signature header: present, non-empty and at most
/// [`MAX_SIGNATURE_HEADER_LEN`] long, checked before anything decodes it.
pub(crate) fn signature<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Result<&[u8], Rejection> {
    let value = headers
        .get(name)
        .ok_or(Rejection::InvalidSignature("missing signature header"))?;
    signature_value(value)
}

/// The same checks for a header value already looked up.
pub(crate) fn signature_value(value: &http::HeaderValue) -> Result<&[u8], Rejection> {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(Rejection::InvalidSignature("signature header too long"));
    }
    if bytes.is_empty() {
        return Err(Rejection::InvalidSignature("empty signature header"));
    }
    Ok(bytes)
}

/// A delivery id or event type: `None` when absent, otherwise 1 to
/// [`MAX_ID_LEN`] bytes of visible ASCII, or `InvalidPayload(malformed)`.
/// Refused rather than truncated so distinct ids never share a dedup key.
pub(crate) fn token<'h, K: AsHeaderName>(
    headers: &'h HeaderMap,
    name: K,
    malformed: &'static str,
) -> Result<Option<&'h str>, Rejection> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_ID_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(Rejection::InvalidPayload(malformed));
    }
    // Visible ASCII is UTF-8, so this cannot fail; mapped anyway to stay
    // panic-free.
    std::str::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Rejection::InvalidPayload(malformed))
}

/// An event type from a header: like [`token`], but spaces are allowed
/// inside (GitLab's `Push Hook`).
pub(crate) fn event<'h, K: AsHeaderName>(
    headers: &'h HeaderMap,
    name: K,
    malformed: &'static str,
) -> Result<Option<&'h str>, Rejection> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(value.as_bytes()).map_err(|_| Rejection::InvalidPayload(malformed))?;
    check_event(text, malformed).map(Some)
}

/// The [`token`] rules for a delivery id read from a body.
pub(crate) fn check_id<'v>(value: &'v str, malformed: &'static str) -> Result<&'v str, Rejection> {
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_ID_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(Rejection::InvalidPayload(malformed));
    }
    Ok(value)
}

/// The [`event`] rules for an event type read from a body.
pub(crate) fn check_event<'v>(
    value: &'v str,
    malformed: &'static str,
) -> Result<&'v str, Rejection> {
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|&b| b == b' ' || b.is_ascii_graphic());
    let trimmed = !bytes.starts_with(b" ") && !bytes.ends_with(b" ");
    if bytes.is_empty() || bytes.len() > MAX_ID_LEN || !printable || !trimmed {
        return Err(Rejection::InvalidPayload(malformed));
    }
    Ok(value)
}

/// A short header a scheme signs or needs (a timestamp, a message id):
/// present, non-empty, at most 256 bytes, or `InvalidSignature`.
pub(crate) fn required<'h, K: AsHeaderName>(
    headers: &'h HeaderMap,
    name: K,
    missing: &'static str,
) -> Result<&'h [u8], Rejection> {
    let value = headers
        .get(name)
        .ok_or(Rejection::InvalidSignature(missing))?
        .as_bytes();
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(Rejection::InvalidSignature(missing));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(name: &'static str, value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_bytes(value).unwrap());
        h
    }

    #[test]
    fn signature_bounds() {
        let h = HeaderMap::new();
        assert_eq!(
            signature(&h, "x-sig"),
            Err(Rejection::InvalidSignature("missing signature header"))
        );
        let h = map("x-sig", b"");
        assert_eq!(
            signature(&h, "x-sig"),
            Err(Rejection::InvalidSignature("empty signature header"))
        );
        let h = map("x-sig", &[b'a'; MAX_SIGNATURE_HEADER_LEN + 1]);
        assert_eq!(
            signature(&h, "X-Sig"),
            Err(Rejection::InvalidSignature("signature header too long"))
        );
        let h = map("x-sig", &[b'a'; MAX_SIGNATURE_HEADER_LEN]);
        assert_eq!(
            signature(&h, "x-sig").map(<[u8]>::len),
            Ok(MAX_SIGNATURE_HEADER_LEN)
        );
    }

    #[test]
    fn event_and_required_bounds() {
        let h = map("x-ev", b"Push Hook");
        assert_eq!(event(&h, "x-ev", "bad"), Ok(Some("Push Hook")));
        for bad in [
            &b" lead"[..],
            b"trail ",
            b"",
            b"tab\t",
            b"caf\xc3\xa9",
            &[b'x'; MAX_ID_LEN + 1],
        ] {
            assert!(event(&map("x-ev", bad), "x-ev", "bad").is_err(), "{bad:?}");
        }
        assert_eq!(check_id("evt_1", "bad"), Ok("evt_1"));
        assert!(check_id("a b", "bad").is_err());
        assert!(required(&HeaderMap::new(), "x-ts", "missing").is_err());
        assert!(required(&map("x-ts", b""), "x-ts", "missing").is_err());
        assert!(required(&map("x-ts", &[b'1'; 300]), "x-ts", "missing").is_err());
        assert_eq!(
            required(&map("x-ts", b"12"), "x-ts", "missing"),
            Ok(&b"12"[..])
        );
    }

    #[test]
    fn token_bounds() {
        const BAD: Rejection = Rejection::InvalidPayload("bad id");
        assert_eq!(token(&HeaderMap::new(), "x-id", "bad id"), Ok(None));
        let ok = map("x-id", b"72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(
            token(&ok, "x-id", "bad id"),
            Ok(Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"))
        );
        let longest = [b'x'; MAX_ID_LEN];
        assert!(token(&map("x-id", &longest), "x-id", "bad id").is_ok());
        for bad in [
            &b""[..],
            &[b'x'; MAX_ID_LEN + 1],
            b"has space",
            b"tab\there",
            b"caf\xc3\xa9",
        ] {
            assert_eq!(
                token(&map("x-id", bad), "x-id", "bad id"),
                Err(BAD),
                "{bad:?}"
            );
        }
    }
}
