//! Which headers cross a tunnel. Hop-by-hop headers (RFC 9110 §7.6.1) are
//! about one connection and never pass: the fixed list, plus whatever the
//! `Connection` header names. HTTP/2 forbids them on the wire anyway, so the
//! relay drops them from the visitor's request and the agent from the
//! destination's response.

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, UPGRADE};

/// Always hop-by-hop. `te` is dropped whole: HTTP/2 allows only
/// `te: trailers`, and nothing on the tunnel needs it.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol an HTTP/1.1 request asks to upgrade to (`websocket`), when
/// it asks: `Connection` lists `upgrade` and `Upgrade` names a token.
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<String> {
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    let token = headers.get(UPGRADE)?.to_str().ok()?.trim();
    let valid = !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b));
    valid.then(|| token.to_ascii_lowercase())
}

/// Marks `headers` as an HTTP/1.1 upgrade to `protocol`.
pub fn set_upgrade(headers: &mut HeaderMap, protocol: &str) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(protocol) {
        headers.insert(UPGRADE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_dropped() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("content-type", "text/plain"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type", "x-kept"]);
    }

    #[test]
    fn upgrades_are_recognised_only_when_both_headers_ask() {
        let ws = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ]);
        assert_eq!(upgrade_protocol(&ws).as_deref(), Some("websocket"));
        assert_eq!(upgrade_protocol(&map(&[("upgrade", "websocket")])), None);
        let odd = map(&[("connection", "upgrade"), ("upgrade", "a b")]);
        assert_eq!(upgrade_protocol(&odd), None);
    }
}
