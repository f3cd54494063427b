//! The body of `POST /v1/functions/{id}/invoke` (DESIGN §9):
//! `server::fuzzing::invoke_body`, axum's `Json` and the route's own checks.
//!
//! Input: arbitrary bytes as the JSON body. Asserts: every refusal is 400
//! `invalid_request`; an accepted request has a method of 1 to 32
//! upper-case ASCII letters, path and query of at most 8 KiB, and headers
//! that are valid HTTP names (lower-case) and values, at most 100.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::fuzzing::invoke_body;

fuzz_target!(|data: &[u8]| {
    match invoke_body(data) {
        Err(refused) => {
            assert_eq!((refused.status, refused.code), (400, "invalid_request"));
        }
        Ok((request, _output)) => {
            let method = &request.method;
            assert!((1..=32).contains(&method.len()), "{method:?}");
            assert!(method.bytes().all(|b| b.is_ascii_uppercase()), "{method:?}");
            assert!(request.path.len() <= 8 * 1024 && request.query.len() <= 8 * 1024);
            assert!(request.headers.len() <= 100);
            for (name, value) in &request.headers {
                assert!(
                    http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                    "{name:?}"
                );
                assert_eq!(name, &name.to_ascii_lowercase());
                assert!(http::HeaderValue::from_str(value).is_ok(), "{value:?}");
            }
        }
    }
});
