//! The nested objects of the admin API's JSON bodies (bucket auth, response
//! policy, generic-hmac configuration, rate limit, retry policy), parsed
//! from arbitrary bytes and validated: never panics, and what validates
//! round-trips through JSON unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{BucketAuth, GenericHmac, RateLimit, ResponsePolicy, RetryPolicy};

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = serde_json::from_slice::<ResponsePolicy>(data) {
        if policy.validate().is_ok() {
            let again: ResponsePolicy =
                serde_json::from_value(serde_json::to_value(&policy).unwrap()).unwrap();
            assert_eq!(again, policy);
        }
    }
    if let Ok(auth) = serde_json::from_slice::<BucketAuth>(data) {
        let shown = auth.redacted().to_string();
        if let BucketAuth::Basic { password, .. } = &auth {
            // The password never appears in what the API shows, unless it
            // is also literally part of the fixed shape's text.
            let p = password.expose();
            assert!(p.len() < 6 || !shown.contains(p));
        }
    }
    if let Ok(limit) = serde_json::from_slice::<RateLimit>(data) {
        let _ = limit.validate();
    }
    let _ = serde_json::from_slice::<GenericHmac>(data);
    let _ = serde_json::from_slice::<RetryPolicy>(data);
});
