//! Every id parser on arbitrary text (ids arrive in URL paths and query
//! strings): never panics, and a parsed id prints back to its input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{BucketId, EventId, InputId, OutputId, TenantId, TokenKey};

fuzz_target!(|text: &str| {
    if let Ok(id) = text.parse::<EventId>() {
        assert_eq!(
            id.to_string().to_ascii_uppercase(),
            text.to_ascii_uppercase()
        );
    }
    if let Ok(id) = text.parse::<InputId>() {
        assert_eq!(id.to_string(), text.to_ascii_lowercase());
    }
    if let Ok(id) = text.parse::<TenantId>() {
        assert_eq!(id.as_str(), text);
    }
    if let Ok(id) = text.parse::<BucketId>() {
        assert_eq!(id.as_str(), text);
    }
    let _ = text.parse::<OutputId>();
    let _ = text.parse::<TokenKey>();
    let _ = TenantId::slug_of(text);
});
