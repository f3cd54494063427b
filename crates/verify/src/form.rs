//! `application/x-www-form-urlencoded` field lookup, for GitHub's `payload=`
//! form (and later Slack commands and Twilio). Decoding follows the WHATWG
//! URL standard: `+` is a space and a `%` not followed by two hex digits is
//! kept as is, so decoding never fails. Depends on nothing.

/// The decoded value of the first field named `name`, or `None` when the
/// body has no such field. Allocates only for the value returned.
pub fn field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        Decoded(key)
            .eq(name.bytes())
            .then(|| Decoded(value).collect())
    })
}

/// Whether the form field `pair` (`key=value` or `key`) is named `name`,
/// comparing the decoded key (`%74oken` is `token`).
pub fn field_is_named(pair: &[u8], name: &str) -> bool {
    let key = match pair.iter().position(|&b| b == b'=') {
        Some(eq) => &pair[..eq],
        None => pair,
    };
    Decoded(key).eq(name.bytes())
}

/// A form-encoded component, decoded.
pub(crate) fn decode(component: &[u8]) -> Vec<u8> {
    Decoded(component).collect()
}

/// The bytes of a form-encoded component, decoded lazily.
struct Decoded<'a>(&'a [u8]);

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        match (first, rest) {
            (b'+', _) => {
                self.0 = rest;
                Some(b' ')
            }
            (b'%', [hi, lo, after @ ..]) => match (hex_value(*hi), hex_value(*lo)) {
                (Some(hi), Some(lo)) => {
                    self.0 = after;
                    Some(hi << 4 | lo)
                }
                _ => {
                    self.0 = rest;
                    Some(b'%')
                }
            },
            _ => {
                self.0 = rest;
                Some(first)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len().div_ceil(3), Some(self.0.len()))
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_decodes_the_field() {
        let body = b"a=1&payload=%7B%22zen%22%3A+%22hi%22%7D&payload=second";
        assert_eq!(
            field(body, "payload").as_deref(),
            Some(&br#"{"zen": "hi"}"#[..])
        );
        assert_eq!(field(body, "a").as_deref(), Some(&b"1"[..]));
        assert_eq!(field(body, "missing"), None);
    }

    #[test]
    fn decodes_keys_and_tolerates_stray_percent_signs() {
        assert_eq!(field(b"pay%6Coad=x", "payload").as_deref(), Some(&b"x"[..]));
        assert_eq!(field(b"payload", "payload").as_deref(), Some(&b""[..]));
        assert_eq!(field(b"k=%zz%4%", "k").as_deref(), Some(&b"%zz%4%"[..]));
        assert_eq!(
            field(b"k=%e2%9C%93", "k").as_deref(),
            Some("\u{2713}".as_bytes())
        );
        assert_eq!(field(b"", "payload"), None);
        assert_eq!(field(b"&&=&", ""), Some(Vec::new()));
    }
}
