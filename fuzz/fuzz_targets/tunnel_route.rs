//! Tunnel routing and the tunnel handshake, the two things a stranger
//! controls before a request reaches an agent: `server::fuzzing::tunnel_route`
//! (Host, absolute-form targets, `/t/{name}`) and `tunnel::wire::decode_hello`.
//!
//! Input: a request target and a Host value separated by NUL; the whole
//! input is also fed to the handshake decoder. Asserts: a routed name is a
//! DNS label; the path handed to the agent starts with `/`; a host-routed
//! name is the first label of the host (or of the target's authority) under
//! the domain; a path-routed name is the raw segment after `/t/`, so no
//! percent-encoding, dot segment or slash can select another tunnel; the
//! decoder never panics and refuses lengths over its bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::fuzzing::tunnel_route;

const DOMAIN: &str = "tun.example";

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = tunnel::wire::decode_hello(data) {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert!(len <= tunnel::wire::MAX_HANDSHAKE_BYTES);
        let _ = hello.kind;
    }
    let text = String::from_utf8_lossy(data);
    let (target, host) = text.split_once('\0').unwrap_or((&text, ""));
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    let host = (!host.is_empty()).then_some(host);
    let Some((name, path, by_host)) = tunnel_route(&uri, host, DOMAIN) else {
        return;
    };
    assert!(model::validate_dns_label("name", &name).is_ok(), "{name:?}");
    assert!(path.starts_with('/'), "{path:?}");
    if by_host {
        let authority = uri
            .authority()
            .map(|a| a.host().to_owned())
            .or(host.map(str::to_owned));
        let authority = authority.unwrap_or_default().to_ascii_lowercase();
        let first = authority
            .split(':')
            .next()
            .unwrap_or_default()
            .split('.')
            .next()
            .unwrap_or_default();
        assert_eq!(first, name);
    } else {
        let segment = uri.path().strip_prefix("/t/").unwrap_or_default();
        let segment = segment.split('/').next().unwrap_or_default();
        assert_eq!(segment.to_ascii_lowercase(), name);
        assert_eq!(
            path.split('?').next().unwrap_or_default(),
            match &uri.path()[3 + segment.len()..] {
                "" => "/",
                rest => rest,
            }
        );
    }
});
