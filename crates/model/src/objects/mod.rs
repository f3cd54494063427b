//! The administered objects of DESIGN §1 and §3.4, one file per family,
//! with their defaults and validation:
//! - `tenant`: [`Tenant`] and its access credentials, [`Token`];
//! - `bucket`: [`Bucket`] and [`BucketAuth`], how its inputs are called;
//! - `input`: [`Input`], the public endpoint, with its [`ResponsePolicy`]
//!   and [`RateLimit`];
//! - `integration`: [`IntegrationKind`], the closed set of signature
//!   schemes `verify` implements, and the generic HMAC's configuration;
//! - `output`: [`Output`], a destination, with its [`RetryPolicy`];
//! - here: [`ValidationError`] and [`validate_slug`], which they all use.
//!
//! These are the domain shapes, not the API's (the server's views are
//! their own structs). Secrets they carry (bucket passwords, input secrets,
//! token hashes) are [`crate::Secret`]s, which do not serialise: an
//! object's serde form skips them, and a store seals them through
//! [`BucketAuth::sealable`] or [`crate::Secret::expose`]. Every crate may
//! use this module; it uses only `ids`, `limits` and `caps`. Paths stay
//! `model::objects::X` (and `model::X`) whichever file holds `X`.

mod bucket;
mod input;
mod integration;
mod output;
mod tenant;

pub use bucket::{Bucket, BucketAuth, SealableAuth};
pub use input::{Input, RateLimit, ResponsePolicy};
pub use integration::{GenericHmac, HmacAlgorithm, IntegrationKind, SignatureEncoding};
pub use output::{Output, RetryPolicy};
pub use tenant::{AgentMode, Tenant, Token, TokenScope};

/// A field that failed validation, named as in the API's JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The JSON field name (`name`, `rateLimit.requests`, ...).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    /// A validation failure of `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks a slug: 1 to 64 of `[a-z0-9-_]`, starting with a letter or digit.
pub fn validate_slug(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 1 to 64 of lowercase letters, digits, '-' or '_'",
        ))
    }
}

/// `true`, as a serde default.
pub(crate) fn yes() -> bool {
    true
}
