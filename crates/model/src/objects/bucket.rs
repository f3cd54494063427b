//! A bucket, the named group of inputs and outputs, and [`BucketAuth`],
//! how callers authenticate to every input of it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{BucketId, TenantId};
use crate::Secret;

/// How callers authenticate to every input of a bucket (DESIGN §1).
///
/// Not `Serialize` (it holds secrets): [`BucketAuth::sealable`] is the
/// form a store encrypts, [`BucketAuth::redacted`] the shown one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum BucketAuth {
    None,
    Basic {
        username: String,
        #[schema(value_type = String)]
        password: Secret,
    },
    Token {
        #[schema(value_type = String)]
        token: Secret,
    },
}

/// [`BucketAuth`] in the JSON it is parsed from, secrets included: only to
/// be encrypted at rest (see [`BucketAuth::sealable`]).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SealableAuth<'a> {
    None,
    Basic {
        username: &'a str,
        password: &'a str,
    },
    Token {
        token: &'a str,
    },
}

impl BucketAuth {
    /// No auth (the default).
    pub fn none() -> Self {
        BucketAuth::None
    }

    /// The auth with its secrets in the clear, as `BucketAuth` parses it
    /// back: the one way it serialises, for a store to seal at rest.
    pub fn sealable(&self) -> SealableAuth<'_> {
        match self {
            BucketAuth::None => SealableAuth::None,
            BucketAuth::Basic { username, password } => SealableAuth::Basic {
                username,
                password: password.expose(),
            },
            BucketAuth::Token { token } => SealableAuth::Token {
                token: token.expose(),
            },
        }
    }

    /// The same auth with its secrets removed, for API answers.
    pub fn redacted(&self) -> serde_json::Value {
        match self {
            BucketAuth::None => serde_json::json!({"type": "none"}),
            BucketAuth::Basic { username, .. } => {
                serde_json::json!({"type": "basic", "username": username})
            }
            BucketAuth::Token { .. } => serde_json::json!({"type": "token"}),
        }
    }
}

/// A named group of inputs and outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub id: BucketId,
    pub tenant: TenantId,
    pub name: String,
    /// Sealed apart by the stores; never in the bucket's serde form.
    #[serde(skip_serializing, default = "BucketAuth::none")]
    pub auth: BucketAuth,
    /// Bodies, headers and queries of an ephemeral bucket are never stored.
    pub ephemeral: bool,
    pub retention_seconds: u64,
    pub catchup_seconds: u64,
    /// Bucket kill switch.
    pub enabled: bool,
    pub created_at: i64,
}

impl Bucket {
    /// Default retention: 24 h.
    pub const DEFAULT_RETENTION_SECONDS: u64 = 86_400;
    /// Default catch-up window for a reconnecting agent: 10 min.
    pub const DEFAULT_CATCHUP_SECONDS: u64 = 600;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_serialises_only_to_be_sealed_and_shows_redacted() {
        let sealable = BucketAuth::Basic {
            username: "u".into(),
            password: Secret::new("pw"),
        };
        let sealed = serde_json::to_string(&sealable.sealable()).unwrap();
        let back: BucketAuth = serde_json::from_str(&sealed).unwrap();
        assert!(matches!(back, BucketAuth::Basic { password, .. } if password.expose() == "pw"));
        let auth = BucketAuth::Basic {
            username: "u".into(),
            password: Secret::new("pw"),
        };
        assert!(!auth.redacted().to_string().contains("pw"));
    }
}
