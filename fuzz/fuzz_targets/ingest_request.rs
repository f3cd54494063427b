//! What the ingest pipeline reads from a request besides the provider's
//! scheme (`server::fuzzing::ingest_request`): the path suffix after the
//! input id, bucket auth (basic and bearer headers, `?token=`), the query
//! and headers it stores, and the client address behind trusted proxies.
//!
//! Input: NUL-separated fields (flags, username, password or token, path
//! suffix, query, then header name and value pairs). Asserts: the suffix is
//! the one sent; the stored query never holds a `token` field, is a
//! subsequence of the sent one, and is stable when stripped again; a
//! correct credential (basic, bearer, or query token) is accepted, and no
//! bucket credential is stored; the client address is the peer unless the
//! peer is a trusted proxy, and never a trusted proxy otherwise.

#![no_main]

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use model::{BucketAuth, Secret};
use server::fuzzing::ingest_request;

const INPUT: &str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";

fn percent_encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn visible(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn pairs(query: &str) -> Vec<&str> {
    query.split('&').filter(|p| !p.is_empty()).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|&b| b == 0).map(String::from_utf8_lossy);
    let flags = fields.next().map_or(0, |f| f.bytes().next().unwrap_or(0));
    let user = fields.next().unwrap_or_default().into_owned();
    let secret = fields.next().unwrap_or_default().into_owned();
    let suffix = fields.next().unwrap_or_default().into_owned();
    let sent_query = fields.next().unwrap_or_default().into_owned();
    let mut headers = HeaderMap::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }

    let auth = match flags % 3 {
        0 => BucketAuth::None,
        1 => BucketAuth::Basic {
            username: user.clone(),
            password: Secret::new(secret.clone()),
        },
        _ => BucketAuth::Token {
            token: Secret::new(secret.clone()),
        },
    };
    // Bits 2 and 3: present the right credential, as a header or (token
    // only) first in the query.
    let present = flags & 4 != 0;
    let in_query = flags & 8 != 0;
    let mut query = sent_query.clone();
    let mut expect_authorized = matches!(auth, BucketAuth::None);
    // The API refuses empty credentials (`auth: credentials must not be
    // empty`), so only non-empty ones must work.
    let acceptable = match &auth {
        BucketAuth::Basic { .. } => !user.is_empty() && !secret.is_empty(),
        _ => !secret.is_empty(),
    };
    if present && acceptable {
        match &auth {
            BucketAuth::Basic { .. } => {
                let pair = format!("{user}:{secret}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                let value =
                    HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is ASCII");
                headers.insert(http::header::AUTHORIZATION, value);
                expect_authorized = true;
            }
            BucketAuth::Token { .. } if in_query => {
                query = format!("token={}&{sent_query}", percent_encode(&secret));
                // Unless the suffix moved the query's start (`?`, `#`).
                expect_authorized = !suffix.contains(['?', '#']);
            }
            BucketAuth::Token { .. } if visible(&secret) => {
                let value =
                    HeaderValue::from_str(&format!("Bearer {secret}")).expect("visible ASCII");
                headers.insert(http::header::AUTHORIZATION, value);
                expect_authorized = true;
            }
            _ => {}
        }
    }
    let target = if query.is_empty() {
        format!("/v1/webhooks/{INPUT}{suffix}")
    } else {
        format!("/v1/webhooks/{INPUT}{suffix}?{query}")
    };
    // A request line that does not parse never reaches the pipeline.
    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };

    // Bit 4: the peer is a trusted proxy.
    let peer: SocketAddr = ([10, 0, 0, 1], 4711).into();
    let trusted: Vec<IpAddr> = if flags & 16 != 0 {
        vec![peer.ip(), IpAddr::from([10, 0, 0, 2])]
    } else {
        vec![IpAddr::from([10, 0, 0, 2])]
    };

    let got = ingest_request(&auth, &trusted, peer, &uri, &headers);

    if uri.path() == format!("/v1/webhooks/{INPUT}{suffix}")
        && (suffix.is_empty() || suffix.starts_with('/'))
    {
        assert_eq!(got.suffix, suffix);
    }
    if expect_authorized {
        assert!(got.authorized, "a correct credential was refused");
    }
    let uri_query = uri.query().unwrap_or("");
    assert!(
        verify::form_field(got.stored_query.as_bytes(), "token").is_none(),
        "{}",
        got.stored_query
    );
    let kept = pairs(&got.stored_query);
    let mut sent = pairs(uri_query).into_iter();
    for pair in &kept {
        assert!(sent.any(|p| p == *pair), "{pair} was not sent");
    }
    if !matches!(auth, BucketAuth::None) {
        assert!(
            got.stored_headers.iter().all(|(n, _)| n != "authorization"),
            "the bucket's credential is stored"
        );
    } else if headers.contains_key(http::header::AUTHORIZATION) {
        assert!(got.stored_headers.iter().any(|(n, _)| n == "authorization"));
    }
    if got.stored_query != uri_query {
        let again: Uri = format!("/v1/webhooks/{INPUT}?{}", got.stored_query)
            .parse()
            .expect("a stored query is a valid query");
        let twice = ingest_request(&auth, &trusted, peer, &again, &headers);
        assert_eq!(
            twice.stored_query, got.stored_query,
            "stripping is not stable"
        );
    }
    if trusted.contains(&peer.ip()) {
        assert!(got.client_ip == peer.ip() || !trusted.contains(&got.client_ip));
    } else {
        assert_eq!(got.client_ip, peer.ip());
    }
});
