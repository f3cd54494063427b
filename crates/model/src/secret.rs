//! A string that must never reach a log or an answer: `Debug` and
//! `Display` print `***`, and it does not implement `Serialize`.

use std::fmt;

use serde::Deserialize;

/// A secret value (input signing secret, bucket password, token secret).
///
/// It deserialises (request bodies carry secrets in) but never serialises:
/// a struct holding one cannot derive `Serialize`, so a view or a log line
/// that would show it does not compile. It leaves only through
/// [`Secret::expose`] (to sign, hash or seal at rest) and
/// [`Secret::reveal_once`] (the create answers that show it once).
///
/// Comparison is deliberately not derived: compare secrets with a
/// constant-time function (`subtle`), never with `==`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for signing or hashing. Keep the borrow short.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret as an API answer shows it, the one time the contract
    /// lets it (an input's or a token's create answer): the only way a
    /// secret enters a view, so `grep reveal_once` lists every place.
    pub fn reveal_once(&self) -> String {
        self.0.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }
}
