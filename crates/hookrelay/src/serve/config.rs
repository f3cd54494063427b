//! `hookrelay serve`'s configuration: [`ServeArgs`] (flags and
//! `HOOKRELAY_*`), the optional TOML file and the Radarboard variables,
//! resolved in one place into a validated `server::Config`.
//!
//! Precedence: defaults < TOML file < environment < flag. clap merges the
//! last two; the file fills what they leave unset.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use model::Secret;
use serde::Deserialize;

use crate::exit::config_error;

#[derive(Args, Debug, Default)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HOOKRELAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the embedded store [default: ./hookrelay-data].
    #[arg(long, env = "HOOKRELAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `sqlite` (embedded, the default) or `redis://HOST:PORT/DB`
    /// (`rediss://` for TLS): several nodes share one Redis.
    #[arg(long, env = "HOOKRELAY_STORE")]
    store: Option<String>,
    /// First part of every Redis key, so several relays can share one
    /// Redis [default: hr].
    #[arg(long, env = "HOOKRELAY_REDIS_NAMESPACE")]
    redis_namespace: Option<String>,
    /// Seconds a node may go silent before the other nodes take back the
    /// deliveries it held [default: 10].
    #[arg(long, env = "HOOKRELAY_REDIS_NODE_TTL")]
    redis_node_ttl: Option<u64>,
    /// A private CA (PEM) that signs a `rediss://` server's certificate
    /// [default: the system's roots].
    #[arg(long, env = "HOOKRELAY_REDIS_CA_FILE")]
    redis_ca_file: Option<PathBuf>,
    /// The URL senders use to reach this relay [default: http://<listen>].
    #[arg(long, env = "HOOKRELAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "HOOKRELAY_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "HOOKRELAY_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Admin secret, presented as `Bearer <secret>` (also RELAY_ADMIN_SECRET).
    #[arg(long, env = "HOOKRELAY_ADMIN_SECRET", hide_env_values = true)]
    admin_secret: Option<String>,
    /// Proxy addresses whose X-Forwarded-For is trusted (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "HOOKRELAY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<IpAddr>,
    /// bcrypt cost of new secrets (10 or more in production).
    #[arg(long, env = "HOOKRELAY_BCRYPT_COST")]
    bcrypt_cost: Option<u32>,
    /// Seconds between retention sweeps [default: 60].
    #[arg(long, env = "HOOKRELAY_RETENTION_INTERVAL")]
    retention_interval: Option<u64>,
    /// Seconds a client has to send its request headers (and its first
    /// byte, and a TLS handshake) [default: 10].
    #[arg(long, env = "HOOKRELAY_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<u64>,
    /// Let the server's own deliveries (public outputs) reach private,
    /// loopback and link-local addresses.
    #[arg(long, env = "HOOKRELAY_ALLOW_PRIVATE_DESTINATIONS")]
    allow_private_destinations: bool,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
    /// Route requests for `{name}.DOMAIN` to tunnel `name` (point a
    /// wildcard DNS record and certificate at the relay).
    #[arg(long, env = "HOOKRELAY_TUNNEL_DOMAIN")]
    tunnel_domain: Option<String>,
    /// The most body bytes of one tunnel request or answer, as bytes or
    /// with a KiB/MiB/GiB suffix (e.g. 100MiB) [default: unlimited].
    #[arg(long, env = "HOOKRELAY_TUNNEL_BODY_LIMIT")]
    tunnel_body_limit: Option<String>,
    /// With a shared store (redis://): this node's address as the other
    /// nodes reach it, http://HOST:PORT, so they can carry tunnel requests
    /// to the agents connected here [default: http:// and the listen
    /// address, unless that is a wildcard such as 0.0.0.0].
    #[arg(long, env = "HOOKRELAY_NODE_URL")]
    node_url: Option<String>,
    /// A TOML file with the same settings (snake_case keys).
    #[arg(long, env = "HOOKRELAY_CONFIG")]
    config: Option<PathBuf>,
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    redis_namespace: Option<String>,
    redis_node_ttl: Option<u64>,
    redis_ca_file: Option<PathBuf>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    admin_secret: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<IpAddr>,
    bcrypt_cost: Option<u32>,
    retention_interval: Option<u64>,
    header_read_timeout: Option<u64>,
    allowed_origin: Option<String>,
    allow_private_destinations: Option<bool>,
    max_connections: Option<usize>,
    max_unauthenticated_agents: Option<usize>,
    max_unauthenticated_agents_per_ip: Option<usize>,
    agent_message_budget_mib: Option<usize>,
    ingest_body_budget_mib: Option<usize>,
    function_timeout_ms: Option<u64>,
    function_memory_mib: Option<usize>,
    tunnel_domain: Option<String>,
    tunnel_body_limit: Option<String>,
    node_url: Option<String>,
}

/// Where events and configuration live.
#[derive(Debug)]
pub(super) enum StoreChoice {
    /// The embedded SQLite file in the data dir.
    Sqlite,
    /// A shared Redis (several nodes), by its URL.
    Redis(String, store::redis::RedisOptions),
}

/// Everything `serve` needs, resolved.
pub(super) struct Resolved {
    pub(super) listen: SocketAddr,
    pub(super) data_dir: PathBuf,
    pub(super) store: StoreChoice,
    /// Whether `config.public_url` was configured, rather than derived from
    /// the listen address (which is only known for port 0 after binding).
    pub(super) public_url_given: bool,
    /// `--node-url`, checked; `None` when not given.
    pub(super) node_url: Option<String>,
    pub(super) config: server::Config,
}

fn load_file(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| config_error(format!("{}: {e}", path.display())))
}

pub(super) fn resolve(args: ServeArgs, env: &[(String, String)]) -> anyhow::Result<Resolved> {
    let file = load_file(args.config.as_ref())?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("hookrelay-data"));
    let store = match args.store.or(file.store).as_deref() {
        None | Some("sqlite") => StoreChoice::Sqlite,
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let mut options = store::redis::RedisOptions::default();
            if let Some(namespace) = args.redis_namespace.or(file.redis_namespace) {
                let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if namespace.is_empty() || !namespace.chars().all(allowed) {
                    return Err(config_error(format!(
                        "--redis-namespace {namespace:?}: use letters, digits, - and _"
                    )));
                }
                options.namespace = namespace;
            }
            if let Some(ttl) = args.redis_node_ttl.or(file.redis_node_ttl) {
                if !(1..=300).contains(&ttl) {
                    return Err(config_error("--redis-node-ttl: 1 to 300 seconds"));
                }
                options.node_ttl = Duration::from_secs(ttl);
            }
            if let Some(path) = args.redis_ca_file.or(file.redis_ca_file) {
                if !url.starts_with("rediss://") {
                    return Err(config_error(
                        "--redis-ca-file goes with a rediss:// (TLS) store",
                    ));
                }
                let pem = std::fs::read(&path).map_err(|e| {
                    config_error(format!("--redis-ca-file {}: {e}", path.display()))
                })?;
                options.ca_pem = Some(pem);
            }
            StoreChoice::Redis(url.to_owned(), options)
        }
        Some(other) => {
            return Err(config_error(format!(
                "--store {}: expected sqlite, redis://HOST:PORT/DB or rediss://HOST:PORT/DB",
                redact_url(other)
            )))
        }
    };
    let tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(load_tls(&cert, &key)?),
        _ => {
            return Err(config_error(
                "--tls-cert and --tls-key go together: give both or neither",
            ))
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let given_url = args.public_url.or(file.public_url);
    let public_url_given = given_url.is_some();
    let public_url = given_url.unwrap_or_else(|| format!("{scheme}://{listen}"));
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return Err(config_error(
            "--public-url must start with http:// or https://",
        ));
    }
    let mut config = server::Config::new(public_url);
    config.tls = tls;
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    config.admin_secret = args
        .admin_secret
        .or(file.admin_secret)
        .or_else(|| var("RELAY_ADMIN_SECRET"))
        .filter(|s| !s.is_empty())
        .map(Secret::from);
    config.poll_secret = var("RELAY_POLL_SECRET")
        .filter(|s| !s.is_empty())
        .map(Secret::from);
    config.enabled = !var("RELAY_ENABLED").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    config.allowed_origin = var("ALLOWED_ORIGIN").or(file.allowed_origin);
    config.trusted_proxies = if args.trusted_proxies.is_empty() {
        file.trusted_proxies
    } else {
        args.trusted_proxies
    };
    config.allow_private_destinations =
        args.allow_private_destinations || file.allow_private_destinations.unwrap_or(false);
    let file_limits = crate::limits::LimitArgs {
        max_connections: file.max_connections,
        max_unauthenticated_agents: file.max_unauthenticated_agents,
        max_unauthenticated_agents_per_ip: file.max_unauthenticated_agents_per_ip,
        agent_message_budget_mib: file.agent_message_budget_mib,
        ingest_body_budget_mib: file.ingest_body_budget_mib,
        function_timeout_ms: file.function_timeout_ms,
        function_memory_mib: file.function_memory_mib,
    };
    args.limits.apply(&file_limits, &mut config)?;
    config.tunnel_domain = match args.tunnel_domain.or(file.tunnel_domain) {
        Some(domain) => Some(tunnel_domain(&domain)?),
        None => None,
    };
    config.tunnel_body_limit = match args.tunnel_body_limit.or(file.tunnel_body_limit) {
        Some(size) => Some(byte_size(&size).ok_or_else(|| {
            config_error(
                "--tunnel-body-limit must be a size such as 1048576, 512KiB, 100MiB or 2GiB",
            )
        })?),
        None => None,
    };
    config.disabled_inputs = disabled_inputs(env);
    config.webhook_secrets = webhook_secrets(env);
    if let Some(cost) = args.bcrypt_cost.or(file.bcrypt_cost) {
        if !(4..=31).contains(&cost) {
            return Err(config_error("--bcrypt-cost must be between 4 and 31"));
        }
        if cost < 10 {
            tracing::warn!(
                cost,
                "bcrypt cost below 10: fine for tests, too weak for production"
            );
        }
        config.bcrypt_cost = cost;
    }
    if let Some(secs) = args.retention_interval.or(file.retention_interval) {
        config.retention_interval = Duration::from_secs(secs.max(1));
    }
    if let Some(secs) = args.header_read_timeout.or(file.header_read_timeout) {
        config.header_read_timeout = Duration::from_secs(secs.max(1));
    }
    let node_url =
        match args.node_url.or(file.node_url) {
            Some(_) if config.tls.is_some() => return Err(config_error(
                "--node-url with --tls-cert: nodes serving TLS cannot carry tunnel requests to \
                 each other yet (node URLs are http://)",
            )),
            Some(url) => Some(node_url(&url)?),
            None => None,
        };
    Ok(Resolved {
        listen,
        data_dir,
        store,
        public_url_given,
        node_url,
        config,
    })
}

/// `--node-url`: `http://host:port`, nothing after the authority (the
/// node-to-node client speaks HTTP/2 without TLS, on the nodes' network).
fn node_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    let valid = url::Url::parse(url).is_ok_and(|parsed| {
        parsed.scheme() == "http"
            && parsed.host_str().is_some_and(|h| !h.is_empty())
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.path() == "/"
            && parsed.query().is_none()
            && parsed.fragment().is_none()
    }) && !url["http://".len().min(url.len())..].contains('/');
    if !valid {
        return Err(config_error(format!(
            "--node-url {url:?}: expected http://HOST:PORT, the address other nodes reach this one at"
        )));
    }
    Ok(url.to_owned())
}

/// `--tunnel-domain`: DNS labels separated by dots, lower-cased.
fn tunnel_domain(domain: &str) -> anyhow::Result<String> {
    let domain = domain.trim_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|label| model::validate_dns_label("", label).is_ok());
    if valid {
        Ok(domain)
    } else {
        Err(config_error(
            "--tunnel-domain must be a DNS name such as tunnels.example.com",
        ))
    }
}

/// `1048576`, `512KiB`, `100MiB`, `2GiB` (powers of 1024; `K`, `M`, `G`
/// and `KB`… read the same), above zero.
fn byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    number
        .parse::<u64>()
        .ok()?
        .checked_mul(1 << shift)
        .filter(|&n| n > 0)
}

pub(super) fn var_of(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// `RELAY_DISABLE_<NAME>=true` → input name (lowercase, `_` → `-`).
fn disabled_inputs(env: &[(String, String)]) -> HashSet<String> {
    env.iter()
        .filter(|(_, v)| v.eq_ignore_ascii_case("true"))
        .filter_map(|(k, _)| k.strip_prefix("RELAY_DISABLE_"))
        .map(input_name)
        .collect()
}

/// `WEBHOOK_SECRET_<NAME>=s1,s2` → (input name, secrets newest first).
fn webhook_secrets(env: &[(String, String)]) -> Vec<(String, Vec<Secret>)> {
    let mut pairs: Vec<_> = env
        .iter()
        .filter_map(|(k, v)| Some((input_name(k.strip_prefix("WEBHOOK_SECRET_")?), v)))
        .map(|(name, list)| {
            let secrets = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::from)
                .collect();
            (name, secrets)
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

fn input_name(env_suffix: &str) -> String {
    env_suffix.to_ascii_lowercase().replace('_', "-")
}
/// A store URL without its password, for messages.
pub(super) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

/// Reads the PEM certificate chain and key for `--tls-cert`/`--tls-key`.
fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<std::sync::Arc<rustls::ServerConfig>, anyhow::Error> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))
    };
    let cert_pem = read(cert)?;
    if server::config::leaf_is_ca(&cert_pem) {
        // Browsers and curl may take it; rustls (our agents and CLI) does
        // not, so say so now rather than at the first agent (issue 18).
        tracing::warn!(
            certificate = %cert.display(),
            "the TLS certificate is a CA certificate (basicConstraints CA:TRUE): hookrelay's \
             agents and CLI refuse it as the server's own (CaUsedAsEndEntity); make it with \
             -addext basicConstraints=critical,CA:FALSE (README, \"TLS\")"
        );
    }
    let config = server::config::tls_from_pem(&cert_pem, &read(key)?)
        .map_err(|e| config_error(format!("TLS: {e}")))?;
    Ok(std::sync::Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ConfigError;

    /// The repository's commented sample, `hookrelay.toml`, loads and
    /// resolves: it cannot drift from the keys `serve` accepts.
    #[test]
    fn the_sample_config_file_loads() {
        let sample = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../hookrelay.toml"));
        let file =
            load_file(Some(&sample)).expect("hookrelay.toml parses with deny_unknown_fields");
        assert_eq!(file.listen, Some("127.0.0.1:8080".parse().unwrap()));
        let args = ServeArgs {
            config: Some(sample),
            ..ServeArgs::default()
        };
        let resolved = resolve(args, &[]).expect("the sample resolves");
        assert!(matches!(resolved.store, StoreChoice::Sqlite));
        assert_eq!(resolved.config.bcrypt_cost, 12);
    }

    #[test]
    fn node_urls_are_http_host_and_port() {
        for good in [
            "http://10.0.0.5:8080",
            "http://node-2.internal:80/",
            "http://[::1]:9",
        ] {
            assert!(node_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "10.0.0.5:8080",
            "https://node:443",
            "http://",
            "http://node/base",
            "http://user@node:80",
            "http://node:80?x",
        ] {
            assert!(node_url(bad).is_err(), "{bad}");
        }
        let args = ServeArgs {
            node_url: Some("http://10.0.0.5:8080/".into()),
            ..ServeArgs::default()
        };
        let resolved = resolve(args, &[]).unwrap();
        assert_eq!(resolved.node_url.as_deref(), Some("http://10.0.0.5:8080"));
    }

    #[test]
    fn tunnel_body_limits_read_as_sizes() {
        assert_eq!(byte_size("1048576"), Some(1 << 20));
        assert_eq!(byte_size("512KiB"), Some(512 << 10));
        assert_eq!(byte_size("100 MiB"), Some(100 << 20));
        assert_eq!(byte_size("2g"), Some(2 << 30));
        for bad in [
            "",
            "0",
            "MiB",
            "1.5MiB",
            "-1",
            "1TiB",
            "99999999999999999999",
        ] {
            assert_eq!(byte_size(bad), None, "{bad}");
        }
        let args = ServeArgs {
            tunnel_body_limit: Some("1MiB".into()),
            ..ServeArgs::default()
        };
        let resolved = resolve(args, &[]).unwrap();
        assert_eq!(resolved.config.tunnel_body_limit, Some(1 << 20));
        let args = ServeArgs {
            tunnel_body_limit: Some("lots".into()),
            ..ServeArgs::default()
        };
        assert!(resolve(args, &[]).is_err());
    }

    #[test]
    fn function_limits_come_from_flags_or_the_file_within_range() {
        let defaults = resolve(ServeArgs::default(), &[]).unwrap().config;
        assert_eq!(defaults.function_timeout, Duration::from_millis(100));
        assert_eq!(defaults.function_memory, 16 << 20);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("functions.toml");
        std::fs::write(
            &path,
            "function_timeout_ms = 250\nfunction_memory_mib = 8\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let config = resolve(args, &[]).unwrap().config;
        assert_eq!(config.function_timeout, Duration::from_millis(250));
        assert_eq!(config.function_memory, 8 << 20);
        // A flag wins over the file.
        let mut args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        args.limits.function_timeout_ms = Some(20);
        assert_eq!(
            resolve(args, &[]).unwrap().config.function_timeout,
            Duration::from_millis(20)
        );
        for (ms, mib) in [
            (Some(0), None),
            (Some(10_001), None),
            (None, Some(0)),
            (None, Some(1025)),
        ] {
            let mut args = ServeArgs::default();
            args.limits.function_timeout_ms = ms;
            args.limits.function_memory_mib = mib;
            let err = resolve(args, &[]).err().expect("out of range");
            assert!(err.downcast_ref::<ConfigError>().is_some(), "{err}");
        }
    }

    #[test]
    fn the_connection_bound_comes_from_the_flag_or_the_file_at_least_64() {
        let defaults = resolve(ServeArgs::default(), &[]).unwrap().config;
        assert_eq!(defaults.max_connections, 10_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connections.toml");
        std::fs::write(&path, "max_connections = 20000\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        assert_eq!(resolve(args, &[]).unwrap().config.max_connections, 20_000);
        let mut args = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        };
        args.limits.max_connections = Some(3);
        assert_eq!(resolve(args, &[]).unwrap().config.max_connections, 64);
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn radarboard_environment() {
        let env = env(&[
            ("WEBHOOK_SECRET_GITHUB", "new, old"),
            ("RELAY_DISABLE_GIT_HUB", "true"),
            ("RELAY_DISABLE_OTHER", "false"),
            ("RELAY_ENABLED", "false"),
            ("RELAY_POLL_SECRET", "p"),
            ("ALLOWED_ORIGIN", "https://dash.example"),
        ]);
        let resolved = resolve(ServeArgs::default(), &env).unwrap();
        let c = resolved.config;
        assert!(!c.enabled);
        assert_eq!(c.webhook_secrets.len(), 1);
        assert_eq!(c.webhook_secrets[0].0, "github");
        let secrets: Vec<_> = c.webhook_secrets[0].1.iter().map(|s| s.expose()).collect();
        assert_eq!(secrets, ["new", "old"]);
        assert!(c.disabled_inputs.contains("git-hub"));
        assert!(!c.disabled_inputs.contains("other"));
        assert_eq!(c.allowed_origin.as_deref(), Some("https://dash.example"));
        assert!(c.poll_secret.is_some());
    }

    #[test]
    fn file_fills_what_flags_leave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookrelay.toml");
        std::fs::write(
            &path,
            "listen = \"[::1]:9999\"\npublic_url = \"https://relay.example\"\n\
             header_read_timeout = 20\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            public_url: Some("https://flag.example".into()),
            ..Default::default()
        };
        let r = resolve(args, &[]).unwrap();
        assert_eq!(r.listen.port(), 9999);
        assert_eq!(r.config.public_url, "https://flag.example");
        assert_eq!(r.config.header_read_timeout, Duration::from_secs(20));

        std::fs::write(&path, "nonsense = 1\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let err = resolve(args, &[]).err().unwrap();
        assert!(err.downcast_ref::<ConfigError>().is_some());
    }

    #[test]
    fn redis_urls_choose_the_shared_store() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://user:pw@redis.example:6380/2",
        ] {
            let args = ServeArgs {
                store: Some(url.into()),
                ..Default::default()
            };
            let resolved = resolve(args, &[]).expect("a redis URL is a store");
            assert!(matches!(resolved.store, StoreChoice::Redis(u, _) if u == url));
        }
        assert_eq!(
            redact_url("rediss://user:pw@redis.example:6380/2"),
            "rediss://user:***@redis.example:6380/2"
        );
    }

    #[test]
    fn unsupported_store_is_a_config_error() {
        let args = ServeArgs {
            store: Some("postgres://db.example/hookrelay".into()),
            ..Default::default()
        };
        assert!(resolve(args, &[])
            .err()
            .unwrap()
            .downcast_ref::<ConfigError>()
            .is_some());
    }
}
