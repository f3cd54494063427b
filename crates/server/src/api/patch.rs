//! PATCH bodies are typed: each patchable field of a create body is
//! optional, absent means "keep", and the patched object is checked as a
//! create would be. A field that may be null in the object takes `null` to
//! clear it (`Option<Option<T>>`); any other field refuses `null`, as its
//! create body does.

use serde::{Deserialize, Deserializer};

/// `#[serde(default, deserialize_with = "present")]`: a field that is
/// there is `Some` of its value, whatever the value (`null` included when
/// `T` is an `Option`); one that is absent stays `None` by `default`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Sets `field` to the patch's value when the patch has one.
pub(crate) fn set<T>(field: &mut T, patch: Option<T>) {
    if let Some(value) = patch {
        *field = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct P {
        #[serde(default, deserialize_with = "present")]
        name: Option<Option<String>>,
        #[serde(default, deserialize_with = "present")]
        enabled: Option<bool>,
    }

    #[test]
    fn absent_keeps_null_clears_and_null_is_refused_where_it_cannot_be() {
        let p: P = serde_json::from_str("{}").unwrap();
        assert_eq!((p.name, p.enabled), (None, None));
        let p: P = serde_json::from_str(r#"{"name": null}"#).unwrap();
        assert_eq!(p.name, Some(None));
        let p: P = serde_json::from_str(r#"{"name": "x", "enabled": false}"#).unwrap();
        assert_eq!((p.name, p.enabled), (Some(Some("x".into())), Some(false)));
        assert!(serde_json::from_str::<P>(r#"{"enabled": null}"#).is_err());
    }
}
