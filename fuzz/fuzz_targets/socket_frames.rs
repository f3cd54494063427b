//! Webhook Relay socket frames and channel messages: what a stranger sends
//! on `GET /v1/socket` before and after `auth` (`server::fuzzing::socket_frame`),
//! and what a provider's request becomes in the smee and gosmee formats
//! (`server::fuzzing::channel_messages`, also parsing a gosmee
//! `Last-Event-ID`).
//!
//! Input: a frame, NUL, a body, NUL, a header value, NUL, a query.
//! Asserts: no panic; an accepted `auth` carries at most 256-byte
//! credentials and a `subscribe` at most 256 buckets; the smee data is one
//! JSON object without a raw CR (numbers beyond f64 allowed only from the
//! body), whose `body` is the body's JSON when the body is JSON and is
//! never duplicated; the gosmee data is a JSON object
//! whose `bodyB` decodes to the exact body, never with `body`; a parsed
//! gosmee id is two `u64`s and the id minted prints as one.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use server::fuzzing::{channel_messages, socket_frame, SocketAction, SOCKET_MAX_BUCKETS};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == 0);
    let frame = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();

    match socket_frame(&frame) {
        Ok(SocketAction::Auth { key, secret }) => assert!(key.len() <= 256 && secret.len() <= 256),
        Ok(SocketAction::Subscribe(Some(buckets))) => {
            assert!(!buckets.is_empty() && buckets.len() <= SOCKET_MAX_BUCKETS)
        }
        Ok(_) | Err(_) => {}
    }

    let headers = vec![
        ("x-fuzz".to_owned(), header.clone()),
        ("body".to_owned(), header),
    ];
    let (smee, gosmee, id, parsed) = channel_messages(headers, &query, body, &frame);
    assert!(!smee.contains('\r'));
    let smee: serde_json::Value = match serde_json::from_str(&smee) {
        Ok(smee) => smee,
        // A JSON body with a number beyond f64 (`1e999`) is JSON (RFC 8259
        // sets no range; smee-client's `JSON.parse` reads it as Infinity)
        // and is spliced as sent; serde_json alone refuses it. Then the
        // body must be where that number came from.
        Err(e) if e.to_string().starts_with("number out of range") => {
            let from_body = serde_json::from_slice::<serde_json::Value>(body).err();
            assert!(
                from_body.is_some_and(|b| b.to_string().starts_with("number out of range")),
                "out of range outside the body: {e}"
            );
            return;
        }
        Err(e) => panic!("smee data is JSON: {e}"),
    };
    let object = smee.as_object().expect("an object");
    assert!(object.contains_key("body") && object.contains_key("query"));
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        assert_eq!(object["body"], json);
    }
    let gosmee: serde_json::Value = serde_json::from_str(&gosmee).expect("gosmee data is JSON");
    assert!(gosmee.get("body").is_none());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(gosmee["bodyB"].as_str().expect("bodyB"))
        .expect("base64");
    assert_eq!(decoded, body);
    assert!(gosmee["timestamp"].is_string());
    let (ms, n) = id.split_once('-').expect("<ms>-<n>");
    assert!(ms.parse::<u64>().is_ok() && n.parse::<u64>().is_ok());
    if let Some((ms, n)) = parsed {
        let (a, b) = frame.split_once('-').expect("a parsed id has a dash");
        assert_eq!(
            (a.parse::<u64>().ok(), b.parse::<u64>().ok()),
            (Some(ms), Some(n))
        );
    }
});
