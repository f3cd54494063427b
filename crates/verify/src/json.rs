//! Shape checks on JSON payloads that need no document tree. Depends on
//! `serde_json`.

use serde::de::IgnoredAny;

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
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(require_object(&body).is_err());
    }
}
