//! Content-Type comparison by media type (DESIGN §8): parameters such as
//! `charset` are ignored and case does not matter. Depends on nothing.

use std::borrow::Cow;

/// `application/json`.
pub(crate) const JSON: &str = "application/json";
/// `application/x-www-form-urlencoded`.
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// The media type of a Content-Type value: parameters dropped, surrounding
/// whitespace trimmed, ASCII-lowercased. Borrows unless it had to lowercase.
///
/// ```
/// assert_eq!(verify::media_type(" Application/JSON ; charset=utf-8"), "application/json");
/// assert_eq!(verify::media_type("text/plain"), "text/plain");
/// ```
pub fn media_type(content_type: &str) -> Cow<'_, str> {
    let essence = essence(content_type);
    if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    }
}

/// Whether `content_type` has media type `media` (given in lowercase),
/// without allocating.
pub(crate) fn is(content_type: &str, media: &str) -> bool {
    essence(content_type).eq_ignore_ascii_case(media)
}

fn essence(content_type: &str) -> &str {
    let media = content_type
        .split_once(';')
        .map_or(content_type, |(media, _params)| media);
    // HTTP's optional whitespace is space and tab only (RFC 9110 §5.6.3).
    media.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_table() {
        let table = [
            ("application/json", "application/json"),
            ("application/json; charset=utf-8", "application/json"),
            ("Application/JSON", "application/json"),
            ("\tAPPLICATION/X-WWW-FORM-URLENCODED;charset=x", FORM),
            ("text/plain ; a=b; c=d", "text/plain"),
            ("", ""),
            (";", ""),
            ("  ", ""),
        ];
        for (input, want) in table {
            assert_eq!(media_type(input), want, "{input:?}");
        }
    }

    #[test]
    fn borrows_when_already_lowercase() {
        assert!(matches!(
            media_type("application/json; charset=utf-8"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(media_type("Application/json"), Cow::Owned(_)));
    }

    #[test]
    fn is_compares_without_parameters() {
        assert!(is("Application/Json;charset=utf-8", JSON));
        assert!(!is("application/json-seq", JSON));
        assert!(!is("application/jsonx; a=b", JSON));
    }
}
