//! `verify::media_type` and step 4 on arbitrary Content-Type strings: never
//! panics, is idempotent, and step 4 only looks at the media type.

#![no_main]

use libfuzzer_sys::fuzz_target;
use verify::{media_type, Integration};

fuzz_target!(|content_type: &str| {
    let media = media_type(content_type);
    assert!(!media.contains(';'));
    assert!(!media.bytes().any(|b| b.is_ascii_uppercase()));
    assert_eq!(media_type(&media), media);
    let github = Integration::Github;
    assert_eq!(
        github.accepts_content_type(Some(content_type)),
        github.accepts_content_type(Some(&media)),
    );
});
