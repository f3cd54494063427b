//! Which of an event's headers travel on to the destination.

use std::collections::BTreeMap;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus the framing headers the client recomputes for the body it sends.
/// `proxy-*` is matched by prefix.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether a header is never forwarded, whatever the event or output says.
pub(crate) fn is_dropped(name: &str) -> bool {
    DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d))
        || name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

/// The headers of the outbound request of a delivery: the event's headers in
/// their order, repeated names included and values untouched (so provider
/// signature headers still verify), minus hop-by-hop headers (`connection`,
/// `keep-alive`, `proxy-*`, `te`, `trailer`, `transfer-encoding`, `upgrade`
/// and any header the event's `Connection` names), `host` (it comes from the
/// target URL) and `content-length` (it comes from the body); then the
/// output's `extra` headers, each replacing every event header of the same
/// name. Names compare case-insensitively; extra headers that are hop-by-hop,
/// `host` or `content-length` are dropped too. Values are bytes, sent
/// exactly as received, UTF-8 or not (DESIGN §8).
pub fn outbound_headers(
    event_headers: &[(String, Vec<u8>)],
    extra: &BTreeMap<String, String>,
) -> Vec<(String, Vec<u8>)> {
    let connection_named: Vec<&str> = event_headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .filter_map(|(_, value)| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .collect();
    let named_in = |list: &[&str], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    let extra_names: Vec<&str> = extra.keys().map(String::as_str).collect();

    event_headers
        .iter()
        .filter(|(name, _)| {
            !is_dropped(name) && !named_in(&connection_named, name) && !named_in(&extra_names, name)
        })
        .cloned()
        .chain(
            extra
                .iter()
                .filter(|(name, _)| !is_dropped(name))
                .map(|(name, value)| (name.clone(), value.clone().into_bytes())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn drops_hop_by_hop_and_keeps_the_rest_in_order() {
        let event = h(&[
            ("Host", "relay.example.com"),
            ("Content-Type", "application/json"),
            ("Connection", "keep-alive, X-Hop"),
            ("connection", "x-other-hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Hub-Signature-256", "sha256=ab  cd"),
            ("Proxy-Authorization", "Basic eA=="),
            ("proxy-connection", "close"),
            ("TE", "trailers"),
            ("Trailer", "x-t"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Content-Length", "42"),
            ("x-hop", "1"),
            ("X-Other-Hop", "2"),
            ("X-Repeated", "one"),
            ("Accept", "*/*"),
            ("x-repeated", "two"),
            ("X-Tetris", "kept: only the exact name te is hop-by-hop"),
        ]);
        let got = outbound_headers(&event, &BTreeMap::new());
        assert_eq!(
            got,
            h(&[
                ("Content-Type", "application/json"),
                ("X-Hub-Signature-256", "sha256=ab  cd"),
                ("X-Repeated", "one"),
                ("Accept", "*/*"),
                ("x-repeated", "two"),
                ("X-Tetris", "kept: only the exact name te is hop-by-hop"),
            ])
        );
    }

    #[test]
    fn extra_headers_replace_same_names_and_come_last() {
        let event = h(&[
            ("authorization", "Bearer from-provider"),
            ("x-a", "1"),
            ("Authorization", "second"),
        ]);
        let extra: BTreeMap<String, String> = [
            ("Authorization", "Bearer from-output"),
            ("x-b", "2"),
            ("Host", "ignored.example"),
            ("Connection", "close"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
        let got = outbound_headers(&event, &extra);
        assert_eq!(
            got,
            h(&[
                ("x-a", "1"),
                ("Authorization", "Bearer from-output"),
                ("x-b", "2")
            ])
        );
    }

    #[test]
    fn dropped_names() {
        for name in ["proxy-foo", "PROXY-Authenticate", "Keep-Alive", "host"] {
            assert!(is_dropped(name), "{name}");
        }
        for name in [
            "proxy",
            "x-proxy-id",
            "tea",
            "hostname",
            "content-type",
            "é",
        ] {
            assert!(!is_dropped(name), "{name}");
        }
    }
}
