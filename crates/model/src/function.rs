//! The function object (DESIGN §9): a tenant's Luau script, its config
//! (secrets, sealed at rest by the stores) and a version that changes with
//! every source change, so a compiled copy is never served stale.
//! Compiling and running it is the `functions` crate's, not this one's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{FunctionId, TenantId};
use crate::objects::ValidationError;
use crate::Secret;

/// Functions a tenant may hold: each is compiled and cached per VM.
pub const MAX_FUNCTIONS: usize = 100;
/// The longest source (DESIGN §9: 64 KiB).
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;
/// Config keys a function may hold.
pub const MAX_CONFIG_KEYS: usize = 64;
/// Keys and values of a config together, in bytes.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024;
/// The longest name.
pub const MAX_NAME_BYTES: usize = 128;

/// A tenant's function.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    pub id: FunctionId,
    pub tenant: TenantId,
    /// A label; not unique (functions are named by id).
    pub name: String,
    /// Always `lua` (Luau, Lua 5.1 syntax).
    pub language: String,
    pub source: String,
    /// Config values are secrets: sealed apart by the stores, never in the
    /// function's serde form; views show only the keys.
    #[serde(skip_serializing, default)]
    pub config: BTreeMap<String, Secret>,
    /// Bumped on every change of the source or config: VMs cache the
    /// compiled script by `(id, version)`.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Function {
    /// Checks name, language, source size and config caps (not whether the
    /// source compiles: the server does that with the compiler).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(ValidationError::new(
                "name",
                format!("must be 1 to {MAX_NAME_BYTES} bytes"),
            ));
        }
        if self.name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not hold control characters",
            ));
        }
        if self.language != "lua" {
            return Err(ValidationError::new("language", "must be \"lua\""));
        }
        if self.source.len() > MAX_SOURCE_BYTES {
            return Err(ValidationError::new(
                "source",
                format!("at most {MAX_SOURCE_BYTES} bytes"),
            ));
        }
        if self.config.len() > MAX_CONFIG_KEYS {
            return Err(ValidationError::new(
                "config",
                format!("at most {MAX_CONFIG_KEYS} keys"),
            ));
        }
        let size: usize = self
            .config
            .iter()
            .map(|(k, v)| k.len() + v.expose().len())
            .sum();
        if size > MAX_CONFIG_BYTES {
            return Err(ValidationError::new(
                "config",
                format!("keys and values at most {MAX_CONFIG_BYTES} bytes in all"),
            ));
        }
        if self.config.keys().any(|k| k.is_empty() || k.len() > 128) {
            return Err(ValidationError::new(
                "config",
                "keys must be 1 to 128 bytes",
            ));
        }
        Ok(())
    }

    /// The config as the stores seal it: a JSON object of the values.
    pub fn sealable_config(&self) -> BTreeMap<&str, &str> {
        self.config
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function() -> Function {
        Function {
            id: FunctionId::generate(),
            tenant: TenantId::default_tenant(),
            name: "f".into(),
            language: "lua".into(),
            source: String::new(),
            config: BTreeMap::new(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn caps_hold() {
        assert!(function().validate().is_ok());
        let mut f = function();
        f.source = "x".repeat(MAX_SOURCE_BYTES + 1);
        assert_eq!(f.validate().unwrap_err().field, "source");
        let mut f = function();
        f.language = "js".into();
        assert_eq!(f.validate().unwrap_err().field, "language");
        let mut f = function();
        f.config = (0..=MAX_CONFIG_KEYS)
            .map(|i| (i.to_string(), Secret::new("v")))
            .collect();
        assert_eq!(f.validate().unwrap_err().field, "config");
        let mut f = function();
        f.name = String::new();
        assert_eq!(f.validate().unwrap_err().field, "name");
    }

    #[test]
    fn config_values_never_serialise() {
        let mut f = function();
        f.config.insert("KEY".into(), Secret::new("hunter2"));
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("hunter2"));
    }
}
