//! What both kinds of agent — the forwarding agent (`agent`) and the tunnel
//! agent (`tunnel::agent`) — do alike when they connect to the relay: the
//! reconnect backoff of DESIGN §5, the TLS roots they trust, the WebSocket
//! URL of an endpoint, and the text of a failed connect. One copy, so the
//! two cannot drift apart (they had: one refused an empty system store at
//! start, the other at the handshake).
//!
//! Depends on rustls only; used by the agents, never by the server.

use std::sync::Arc;
use std::time::Duration;

/// The first wait before reconnecting.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before reconnecting.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before reconnect attempt `failures` (1-based): `1 s × 2^(n−1)`
/// capped at 60 s, then "full jitter" between half and all of it (`unit`
/// in 0..=1), so a fleet of agents cut off together does not return
/// together.
pub fn backoff(failures: u32, unit: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = MIN_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A TLS client trusting the CA file's certificates (`ca_pem`), or the
/// system's roots.
pub fn client_tls(ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("the CA file is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA file holds an unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the CA file holds no certificate".into());
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("the system trusts no certificate: pass --ca-file".into());
            }
        }
    }
    Ok(roots)
}

/// The WebSocket URL of the endpoint at `path` of the relay at `server`:
/// `http://host/base` → `ws://host/base{path}` (and https → wss).
pub fn ws_url(server: &str, path: &str) -> Result<String, String> {
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| format!("the server URL {server:?} has no scheme"))?;
    let scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    Ok(format!("{scheme}://{}{path}", rest.trim_end_matches('/')))
}

/// An error and its causes on one line: transport errors say little at the
/// top ("transport error"); the causes say what failed ("connection
/// refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute_with_jitter() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(7, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(100, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
    }

    proptest::proptest! {
        #[test]
        fn backoff_stays_between_half_a_second_and_a_minute(n in 0u32..1000, unit in -1.0f64..2.0) {
            let d = backoff(n, unit);
            proptest::prop_assert!(d >= Duration::from_millis(500));
            proptest::prop_assert!(d <= MAX_BACKOFF);
        }
    }

    #[test]
    fn websocket_urls_follow_the_server_url() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080", "/v1/agent/ws").unwrap(),
            "ws://127.0.0.1:8080/v1/agent/ws"
        );
        assert_eq!(
            ws_url("https://relay.example/", "/v1/tunnel/ws").unwrap(),
            "wss://relay.example/v1/tunnel/ws"
        );
        assert!(ws_url("ftp://x", "/p").is_err());
        assert!(ws_url("relay.example", "/p").is_err());
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        assert!(client_tls(Some(b"")).is_err());
        assert!(client_tls(Some(b"-----BEGIN CERTIFICATE-----\nnot base64\n")).is_err());
    }
}
