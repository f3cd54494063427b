//! Shape checks on JSON payloads that need no document tree. Depends on
//! `serde_json`.

use serde::de::{DeserializeOwned, IgnoredAny};

use crate::Rejection;

/// Ok when `bytes` is one valid JSON document (UTF-8, nothing trailing)
/// whose top level is an object. Validates without building a tree, and
/// `serde_json`'s recursion limit (128) bounds the stack on hostile nesting.
pub(crate) fn require_object(bytes: &[u8]) -> Result<(), Rejection> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Rejection::InvalidPayload("body is not UTF-8"))?;
    // JSON's insignificant whitespace; a valid document that starts with `{`
    // after it is an object.
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first();
    if first != Some(&b'{') {
        return Err(Rejection::InvalidPayload("body is not a JSON object"));
    }
    serde_json::from_str::<IgnoredAny>(text)
        .map(drop)
        .map_err(|_| Rejection::InvalidPayload("body is not valid JSON"))
}

/// The fields of `T` from a body that must be one JSON object (the same
/// checks as [`require_object`]). Unknown fields are skipped without being
/// kept; a known field of the wrong type is refused.
pub(crate) fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    let text = starts_like(bytes, b'{', "body is not a JSON object")?;
    from_text(text)
}

/// The fields of `T` from a body that is a JSON object or array (batched
/// providers: SendGrid, Twilio Event Streams).
pub(crate) fn value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Rejection::InvalidPayload("body is not UTF-8"))?;
    from_text(text)
}

/// The text of `bytes` when its first non-whitespace byte is `first`.
fn starts_like<'b>(bytes: &'b [u8], first: u8, wrong: &'static str) -> Result<&'b str, Rejection> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Rejection::InvalidPayload("body is not UTF-8"))?;
    let head = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first();
    if head != Some(&first) {
        return Err(Rejection::InvalidPayload(wrong));
    }
    Ok(text)
}

fn from_text<T: DeserializeOwned>(text: &str) -> Result<T, Rejection> {
    serde_json::from_str::<T>(text).map_err(|e| {
        if e.is_data() {
            Rejection::InvalidPayload("unexpected JSON field type")
        } else {
            Rejection::InvalidPayload("body is not valid JSON")
        }
    })
}

/// A JSON value that providers send either as a string or as a number
/// (Mailgun timestamps, Discord interaction types).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum Scalar {
    Text(String),
    Number(serde_json::Number),
}

impl Scalar {
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Text(s) => s.parse().ok(),
            Scalar::Number(n) => n.as_i64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_only() {
        for ok in [
            &b"{}"[..],
            b" \n{\"a\": [1, {\"b\": null}]}\r\n",
            br#"{"s":"caf\u00e9"}"#,
        ] {
            assert_eq!(
                require_object(ok),
                Ok(()),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
        let table: [(&[u8], &str); 8] = [
            (b"", "body is not a JSON object"),
            (b"[]", "body is not a JSON object"),
            (b"\"{}\"", "body is not a JSON object"),
            (b"null", "body is not a JSON object"),
            (b"{", "body is not valid JSON"),
            (b"{} {}", "body is not valid JSON"),
            (b"{\"a\":1,}", "body is not valid JSON"),
            (b"{\"a\":\"\xff\"}", "body is not UTF-8"),
        ];
        for (body, reason) in table {
            assert_eq!(require_object(body), Err(Rejection::InvalidPayload(reason)));
        }
    }

    #[test]
    fn typed_fields() {
        #[derive(serde::Deserialize)]
        struct T {
            id: Option<String>,
        }
        let t: T = object(br#"{"id":"evt_1","other":[1,{"x":2}]}"#).unwrap();
        assert_eq!(t.id.as_deref(), Some("evt_1"));
        assert_eq!(
            object::<T>(b"[\"evt\"]").err(),
            Some(Rejection::InvalidPayload("body is not a JSON object"))
        );
        assert_eq!(
            object::<T>(br#"{"id":1}"#).err(),
            Some(Rejection::InvalidPayload("unexpected JSON field type"))
        );
        assert_eq!(
            object::<T>(br#"{"id":"#).err(),
            Some(Rejection::InvalidPayload("body is not valid JSON"))
        );
        let v: Vec<IgnoredAny> = value(b"[1,2,3]").unwrap();
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(require_object(&body).is_err());
    }
}
