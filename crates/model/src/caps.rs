//! Caps on the lists a tenant can grow (DESIGN §7, issue 19): each is a
//! cost paid per request by everyone on the relay, so each is bounded and
//! refused with a message naming the field.
//!
//! - secrets of an input: every unsigned request is checked against each
//!   one (100,000 secrets made one 200 KB request cost 11.3 s of CPU);
//! - output headers: sent with every delivery, so an invalid one made
//!   every delivery fail at once, and 50,000 of them every request huge.

use std::collections::BTreeMap;

use crate::{Secret, ValidationError};

/// Secrets an input may hold (rotation needs two or three).
pub const MAX_SECRETS: usize = 10;

/// The longest secret: shared secrets are tens of bytes, the longest
/// public key an integration takes (SendGrid's base64 DER) about 120.
pub const MAX_SECRET_BYTES: usize = 1024;

/// Extra headers an output may send.
pub const MAX_OUTPUT_HEADERS: usize = 64;

/// Names and values of an output's headers together, in bytes: well
/// under the 8 KiB many servers accept in all.
pub const MAX_OUTPUT_HEADER_BYTES: usize = 4 * 1024;

/// Headers the relay sets itself when it forwards (connection-specific
/// ones, RFC 9110 §7.6.1, and the framing): an output may not override them.
const RESERVED_HEADERS: [&str; 9] = [
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Checks the number and length of `secrets` (`field` names them).
pub fn check_secrets(field: &'static str, secrets: &[Secret]) -> Result<(), ValidationError> {
    if secrets.len() > MAX_SECRETS {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_SECRETS} secrets (got {})", secrets.len()),
        ));
    }
    if secrets.iter().any(|s| s.expose().len() > MAX_SECRET_BYTES) {
        return Err(ValidationError::new(
            field,
            format!("a secret may be at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Checks an output's extra headers: at most [`MAX_OUTPUT_HEADERS`] of
/// [`MAX_OUTPUT_HEADER_BYTES`] in all, each name an RFC 9110 token (§5.1)
/// and each value a field value (§5.5: no CR, LF, NUL or other control but
/// tab, no leading or trailing whitespace), none of [`RESERVED_HEADERS`].
pub fn check_output_headers(headers: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    if headers.len() > MAX_OUTPUT_HEADERS {
        return Err(ValidationError::new(
            "headers",
            format!(
                "at most {MAX_OUTPUT_HEADERS} headers (got {})",
                headers.len()
            ),
        ));
    }
    let size: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if size > MAX_OUTPUT_HEADER_BYTES {
        return Err(ValidationError::new(
            "headers",
            format!("names and values at most {MAX_OUTPUT_HEADER_BYTES} bytes in all"),
        ));
    }
    for (name, value) in headers {
        if !is_token(name) {
            return Err(ValidationError::new(
                "headers",
                format!(
                    "{:?} is not a valid header name (RFC 9110 §5.1)",
                    shown(name)
                ),
            ));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ValidationError::new(
                "headers",
                format!("{name:?} is set by the relay itself"),
            ));
        }
        if !is_field_value(value) {
            return Err(ValidationError::new(
                "headers",
                format!("the value of {name:?} is not a valid header value (RFC 9110 §5.5)"),
            ));
        }
    }
    Ok(())
}

/// `token = 1*tchar` (RFC 9110 §5.6.2).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `field-value = *field-content`: visible characters, spaces and tabs
/// inside, obs-text (bytes from 0x80) allowed.
fn is_field_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..0x7f).contains(&b) || b >= 0x80);
    let edge_ok = |b: Option<&u8>| b.is_none_or(|b| *b != b' ' && *b != b'\t');
    inner_ok && edge_ok(bytes.first()) && edge_ok(bytes.last())
}

/// A name as it may appear in a message: at most 64 characters.
fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn secrets_are_capped_in_number_and_length() {
        let ten: Vec<Secret> = (0..10).map(|i| Secret::from(format!("s{i}"))).collect();
        assert!(check_secrets("secrets", &ten).is_ok());
        let eleven: Vec<Secret> = (0..11).map(|i| Secret::from(format!("s{i}"))).collect();
        assert_eq!(
            check_secrets("secrets", &eleven).unwrap_err().field,
            "secrets"
        );
        let long = [Secret::from("x".repeat(MAX_SECRET_BYTES + 1))];
        assert!(check_secrets("secrets", &long).is_err());
    }

    #[test]
    fn output_headers_follow_rfc_9110() {
        let ok = headers(&[
            ("X-Api-Key", "abc def"),
            ("x-utf8", "café"),
            ("x-empty", ""),
        ]);
        assert!(check_output_headers(&ok).is_ok());
        for bad in [
            ("x-a", "one\r\nx-b: two"),
            ("x-a", "nul\0"),
            ("x-a", " padded"),
            ("x a", "v"),
            ("x:a", "v"),
            ("", "v"),
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
        ] {
            let err = check_output_headers(&headers(&[bad])).unwrap_err();
            assert_eq!(err.field, "headers", "{bad:?}");
        }
        let many: BTreeMap<_, _> = (0..65)
            .map(|i| (format!("x-{i}"), "v".to_owned()))
            .collect();
        assert!(check_output_headers(&many).is_err());
        let big = headers(&[("x-big", &"v".repeat(MAX_OUTPUT_HEADER_BYTES))]);
        assert!(check_output_headers(&big).is_err());
    }
}
