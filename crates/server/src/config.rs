//! Typed server configuration. The binary turns flags, `HOOKRELAY_*` and
//! Radarboard environment variables and the TOML file into this; the server
//! never reads the environment itself.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use model::{RateLimit, Secret};

/// Builds the TLS configuration from a PEM certificate chain and a PEM
/// private key, offering HTTP/2 (gRPC) and HTTP/1.1 by ALPN.
pub fn tls_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key file holds no PEM private key: {e}"))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether the first certificate of a PEM chain (the server's own) says
/// `basicConstraints CA:TRUE`, as one made by a plain `openssl req -x509`
/// does: rustls clients refuse it as an end entity (`CaUsedAsEndEntity`).
///
/// Reads the DER directly: the extension's OID (2.5.29.19), an optional
/// `critical` flag, then an OCTET STRING wrapping `SEQUENCE { BOOLEAN
/// TRUE, ... }`; a CA:FALSE certificate has an empty sequence there.
pub fn leaf_is_ca(cert_pem: &[u8]) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    const OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
    let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(cert_pem).next() else {
        return false;
    };
    let der: &[u8] = leaf.as_ref();
    let Some(at) = der.windows(OID.len()).position(|w| w == OID) else {
        return false;
    };
    let mut rest = &der[at + OID.len()..];
    if rest.starts_with(&[0x01, 0x01]) {
        rest = rest.get(3..).unwrap_or_default(); // critical
    }
    // OCTET STRING, short length; SEQUENCE, short length; BOOLEAN TRUE.
    matches!(rest, [0x04, _, 0x30, _, 0x01, 0x01, 0xff, ..])
}

/// Everything the server needs to know, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL the relay is reached at from the outside, without a trailing
    /// slash; used in input URLs (and, later, Twilio's signed URL).
    pub public_url: String,
    /// The admin secret, presented as `Bearer <secret>`. When unset, a first
    /// start creates an admin token instead.
    pub admin_secret: Option<Secret>,
    /// The default tenant's poll secret (`RELAY_POLL_SECRET`).
    pub poll_secret: Option<Secret>,
    /// Server-wide kill switch (`RELAY_ENABLED=false` turns it off).
    pub enabled: bool,
    /// Default tenant's input names disabled by `RELAY_DISABLE_<NAME>=true`.
    pub disabled_inputs: HashSet<String>,
    /// `WEBHOOK_SECRET_<NAME>`: input name → secrets, newest first.
    pub webhook_secrets: Vec<(String, Vec<Secret>)>,
    /// The CORS origin allowed on the poll routes (`ALLOWED_ORIGIN`).
    pub allowed_origin: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Rate limit of the Radarboard poll routes, per client IP.
    pub poll_rate_limit: RateLimit,
    /// How long a provider delivery id is remembered.
    pub dedup_window: Duration,
    /// A client must send its request headers within this.
    pub header_read_timeout: Duration,
    /// A client must send its whole body within this.
    pub body_read_timeout: Duration,
    /// Open connections at most; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Agent streams and WebSocket connections whose `Hello` is not yet
    /// verified, server-wide; beyond it the oldest is closed.
    pub max_unauthenticated_agents: usize,
    /// The same, per client IP.
    pub max_unauthenticated_agents_per_ip: usize,
    /// Bytes of large agent messages (64 KiB and up) being received at
    /// once, server-wide; at least one largest message (32 MiB).
    pub agent_message_budget: usize,
    /// Bytes of ingest bodies being read, checked and stored at once,
    /// server-wide, each body counted four times (its buffer, the sealed
    /// payload's plaintext and ciphertext, the store's copy); beyond it
    /// ingest answers 503 with `Retry-After`. Under four times an input's
    /// `bodyLimit`, it refuses that input's largest bodies.
    pub ingest_body_budget: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How often the retention job runs.
    pub retention_interval: Duration,
    /// bcrypt cost for new token, admin and poll secrets (at least 10 in
    /// production; tests may lower it to 4 to save CPU).
    pub bcrypt_cost: u32,
    /// How long a verified bearer secret is trusted without bcrypt again.
    pub auth_cache_ttl: Duration,
    /// Serve HTTPS (and gRPC and WebSocket over TLS) on the one port.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Let the server's own deliveries (public outputs) reach private,
    /// loopback and link-local addresses. Off by default (DESIGN §7).
    pub allow_private_destinations: bool,
    /// `--tunnel-domain D`: a request whose `Host` is `{name}.D` goes to
    /// tunnel `name`, whatever its path (lower-case, no leading dot).
    pub tunnel_domain: Option<String>,
    /// `--tunnel-body-limit`: the most body bytes one tunnel request or
    /// answer may carry (`None`: unlimited, DESIGN §10). A larger declared
    /// request answers 413; a stream that passes it is cut.
    pub tunnel_body_limit: Option<u64>,
    /// `--node-url` with a shared store: where the other nodes reach this
    /// one for tunnels whose agents it holds (DESIGN §10). `None`: no
    /// other node sends tunnel requests here (one node, or none given).
    pub node: Option<NodeLink>,
    /// Wall time of one function call (DESIGN §9: 100 ms).
    pub function_timeout: Duration,
    /// Memory one function call may allocate (DESIGN §9: 16 MiB).
    pub function_memory: usize,
    /// The most events, and body bytes, one filtered event read or bulk
    /// resend examines (`GET /v1/events`, `POST /v1/events/resend`).
    pub event_scan: ScanBound,
}

/// This node's part in carrying tunnel requests between nodes.
#[derive(Debug, Clone)]
pub struct NodeLink {
    /// This node's base URL as the other nodes reach it (`http://host:port`).
    pub url: String,
    /// The node-to-node keys derived from the master keys (base64), the
    /// active key's first: requests carry the first, and any one is
    /// accepted, so nodes mid-rotation still reach each other.
    pub keys: Vec<Secret>,
}

/// A bound on one scan of the event log.
#[derive(Debug, Clone, Copy)]
pub struct ScanBound {
    /// Events examined.
    pub events: usize,
    /// Body bytes examined; the scan stops after the event that reaches it.
    pub body_bytes: u64,
}

impl Default for ScanBound {
    /// 5,000 events (a few tens of ms to read and decrypt at 1 KiB each;
    /// README, "Event filters") and 64 MiB of bodies, so a log of large
    /// bodies cannot make one request decrypt gigabytes.
    fn default() -> Self {
        ScanBound {
            events: 5_000,
            body_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Defaults for a relay reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            admin_secret: None,
            poll_secret: None,
            enabled: true,
            disabled_inputs: HashSet::new(),
            webhook_secrets: Vec::new(),
            allowed_origin: None,
            trusted_proxies: Vec::new(),
            poll_rate_limit: RateLimit {
                requests: 20,
                window_seconds: 60,
            },
            dedup_window: Duration::from_secs(300),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_unauthenticated_agents: 1_024,
            max_unauthenticated_agents_per_ip: 16,
            agent_message_budget: 256 * 1024 * 1024,
            ingest_body_budget: 256 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            retention_interval: Duration::from_secs(60),
            bcrypt_cost: 12,
            auth_cache_ttl: Duration::from_secs(30),
            tls: None,
            allow_private_destinations: false,
            tunnel_domain: None,
            tunnel_body_limit: None,
            node: None,
            function_timeout: functions::Limits::default().time,
            function_memory: functions::Limits::default().memory,
            event_scan: ScanBound::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    #[test]
    fn a_ca_certificate_serving_as_the_leaf_is_recognised() {
        let key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&key).unwrap();
        assert!(super::leaf_is_ca(ca.pem().as_bytes()));
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.is_ca = IsCa::ExplicitNoCa;
        let leaf = leaf.self_signed(&key).unwrap();
        assert!(!super::leaf_is_ca(leaf.pem().as_bytes()));
        let plain = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(!super::leaf_is_ca(plain.pem().as_bytes()));
        // A chain: only the first (the server's own) counts.
        let chain = format!("{}{}", leaf.pem(), ca.pem());
        assert!(!super::leaf_is_ca(chain.as_bytes()));
        assert!(!super::leaf_is_ca(b"not PEM"));
    }
}
