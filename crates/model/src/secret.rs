//! A string that must never reach a log: `Debug` and `Display` print `***`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value (input signing secret, bucket password, token secret).
///
/// Comparison is deliberately not derived: compare secrets with a
/// constant-time function (`subtle`), never with `==`.
#[derive(Clone, Serialize, Deserialize)]
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
