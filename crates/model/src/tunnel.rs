//! The tunnel object (DESIGN §10): a name the public reaches it by, the
//! credentials the relay checks first, and the `Host` the destination sees.

use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, TunnelId};
use crate::objects::{BucketAuth, ValidationError};

/// A published local service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tunnel {
    pub id: TunnelId,
    pub tenant: TenantId,
    /// A DNS label, unique on the server (not only in the tenant): it is
    /// the first label of the tunnel's host and the segment after `/t/`.
    pub name: String,
    /// Checked at the relay, as a bucket's; removed before the agent.
    /// Sealed apart by the stores; never in the tunnel's serde form.
    #[serde(skip_serializing, default = "BucketAuth::none")]
    pub auth: BucketAuth,
    /// Replaces the visitor's `Host` towards the destination when set.
    pub host_header: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
}

impl Tunnel {
    /// Checks every field a caller may set.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_dns_label("name", &self.name)?;
        if let Some(host) = &self.host_header {
            validate_host("hostHeader", host)?;
        }
        Ok(())
    }
}

/// A DNS label as RFC 1123 allows one, lowercase: 1 to 63 of `[a-z0-9-]`,
/// neither starting nor ending with `-`.
pub fn validate_dns_label(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be a DNS label: 1 to 63 of lowercase letters, digits and '-', not starting or ending with '-'",
        ))
    }
}

/// A `Host` value: `host[:port]`, 1 to 255 visible ASCII characters
/// without spaces, `/`, `?`, `#` or `@` (an authority, not a URL).
fn validate_host(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@\\".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(field, "must be host or host:port"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["a", "myapp", "my-app-2", &"x".repeat(63)] {
            assert!(validate_dns_label("name", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "My",
            "a.b",
            "a_b",
            "a/b",
            "..",
            &"x".repeat(64),
            "é",
        ] {
            assert!(validate_dns_label("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_headers() {
        for good in ["localhost:3000", "app.internal", "[::1]:80"] {
            assert!(validate_host("hostHeader", good).is_ok());
        }
        for bad in ["", "a b", "http://x", "x/y", "u@x", "a\nb"] {
            assert!(validate_host("hostHeader", bad).is_err());
        }
    }
}
