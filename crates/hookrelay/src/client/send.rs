//! `hookrelay send`: posts one test webhook to an input URL, signed the way
//! the chosen provider signs it, so an input's integration and secrets can be
//! checked end to end. The signing itself is `verify::sign`, the same crate
//! the server verifies with, so the two cannot drift apart. Every
//! integration can be sent: for `discord` and `sendgrid`, whose inputs hold
//! the provider's public key, `--secret` is a private key of one's own
//! (see `verify::sign`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use model::{IntegrationKind, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::input::GenericHmacArgs;
use super::table::{clean, clean_multiline};

/// Sent when no `--file` is given; GitHub's own ping carries a `zen` line too.
const DEFAULT_PAYLOAD: &[u8] = br#"{"zen":"hookrelay test"}"#;

/// The payload sent without `--file`: [`DEFAULT_PAYLOAD`], in the shape the
/// provider's own payloads have where the relay checks it (found by the
/// end-to-end test of every integration): SendGrid posts a JSON array of
/// events (`event` is the type), Linear signs `webhookTimestamp` (ms) in
/// the body.
fn default_payload(integration: Option<&str>, event: &str, now_secs: i64) -> Vec<u8> {
    let zen = "hookrelay test";
    let value = match integration.and_then(IntegrationKind::from_name) {
        Some(IntegrationKind::Sendgrid) => serde_json::json!([{"zen": zen, "event": event}]),
        Some(IntegrationKind::Linear) => {
            serde_json::json!({"zen": zen, "webhookTimestamp": now_secs.saturating_mul(1000)})
        }
        _ => return DEFAULT_PAYLOAD.to_vec(),
    };
    value.to_string().into_bytes()
}
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `hookrelay send`.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// Input URL, e.g. http://127.0.0.1:8080/v1/webhooks/<input id>.
    #[arg(long)]
    pub(crate) url: String,
    /// Sign as this provider (`github`, `stripe`, `slack`, ... or
    /// `generic-hmac`); unsigned when omitted.
    #[arg(long)]
    pub(crate) integration: Option<String>,
    /// Signing secret of the input. For `discord`, a hex Ed25519 private key
    /// (the input holds its public key); for `sendgrid`, a base64 or PEM P-256
    /// private key.
    #[arg(long, env = "HOOKRELAY_SECRET", hide_env_values = true)]
    pub(crate) secret: Option<Secret>,
    /// Payload file (`-` for stdin) [default: {"zen":"hookrelay test"}].
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Event type, for providers that send it in a header (X-GitHub-Event,
    /// X-Gitlab-Event, X-Shopify-Topic, X-Event-Key, Linear-Event, ...).
    /// Body-borne types (Stripe `type`, ...) are the payload's.
    #[arg(long, default_value = "ping")]
    pub(crate) event: String,
    /// Extra header `Name: value`; repeatable; replaces a generated header of
    /// the same name (e.g. to send a wrong signature on purpose).
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = super::parse_header)]
    pub(crate) headers: Vec<(String, String)>,
    /// Content type of the payload.
    #[arg(long, default_value = "application/json")]
    pub(crate) content_type: String,
    #[command(flatten)]
    pub(crate) generic: GenericHmacArgs,
    /// A token that may read the input: `send` then checks first that a
    /// `/v1/webhooks/<id>` URL names an input (the relay answers 200 to an
    /// unknown input by design, so a mistyped URL would look delivered).
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Tenant of the input, when the token is the admin's.
    #[arg(long, env = "HOOKRELAY_TENANT")]
    pub(crate) tenant: Option<String>,
    /// PEM file of the CA the relay's TLS certificate is trusted by.
    #[arg(long, env = "HOOKRELAY_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
}

/// The input id of a `/v1/webhooks/<id>[/...]` URL and the relay's base
/// URL before it; `None` for any other URL.
fn input_of(url: &str) -> Option<(String, String)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let path = parsed.path();
    let at = path.find("/v1/webhooks/")?;
    let id = path[at + "/v1/webhooks/".len()..].split('/').next()?;
    if id.is_empty() {
        return None;
    }
    let mut base = parsed.clone();
    base.set_path(&path[..at]);
    base.set_query(None);
    Some((base.to_string(), id.to_owned()))
}

/// With a token, checks that the input of a `/v1/webhooks` URL exists.
async fn check_input(args: &SendArgs) -> anyhow::Result<()> {
    let Some(token) = args.token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let Some((base, id)) = input_of(&args.url) else {
        return Ok(());
    };
    let client = super::http::ApiClient::new(&super::ClientArgs {
        server: base,
        token: Some(token.to_owned()),
        tenant: args.tenant.clone(),
        ca_file: args.ca_file.clone(),
        json: false,
    })?;
    match client.get(&["v1", "inputs", &id], &[], None).await {
        Ok(_) => Ok(()),
        Err(err) => match err.downcast_ref::<super::http::ApiError>() {
            Some(api) if api.status == 404 => anyhow::bail!(
                "no input {} on this relay for this token: check --url (the relay answers \
                 200 to an unknown input by design, so inputs cannot be probed; nothing was sent)",
                clean(&id)
            ),
            _ => Err(err.context("cannot check the input before sending")),
        },
    }
}

/// The test request: URL (Twilio adds `bodySHA256` to it for JSON), body
/// (Mailgun's signature travels inside it) and headers.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// The test request, headers in order: content type, those of
/// `verify::sign` (signature, timestamps, a fresh delivery id so the relay's
/// replay check lets every send through, the event type), then `--header`
/// overrides.
pub(crate) fn prepare(args: &SendArgs, body: &[u8], now_secs: i64) -> anyhow::Result<Prepared> {
    let mut headers = Vec::new();
    set(&mut headers, "content-type", &args.content_type);
    let generic = args.generic.to_model()?;
    let Some(name) = &args.integration else {
        if args.secret.is_some() || generic.is_some() {
            anyhow::bail!("--secret and --generic-* need --integration");
        }
        add_overrides(&mut headers, args);
        return Ok(Prepared {
            url: args.url.clone(),
            headers,
            body: body.to_vec(),
        });
    };
    let Some(kind) = IntegrationKind::from_name(name) else {
        let known: Vec<&str> = IntegrationKind::ALL.iter().map(|k| k.name()).collect();
        anyhow::bail!("unknown integration {name:?}; known: {}", known.join(", "));
    };
    if generic.is_some() && kind != IntegrationKind::GenericHmac {
        anyhow::bail!("--generic-* flags are for --integration generic-hmac only");
    }
    let Some(secret) = &args.secret else {
        anyhow::bail!("--integration {name} needs --secret (or HOOKRELAY_SECRET)");
    };
    let Some(integration) = verify::Integration::new(kind, generic.as_ref()) else {
        anyhow::bail!("--integration generic-hmac needs --generic-header");
    };
    let out = verify::Outgoing {
        url: &args.url,
        content_type: &args.content_type,
        body,
        event: &args.event,
        now_secs,
    };
    let signed = verify::sign(&integration, secret.expose(), &out)
        .with_context(|| format!("cannot sign for {name}"))?;
    for (header, value) in &signed.headers {
        set(&mut headers, header, value);
    }
    add_overrides(&mut headers, args);
    Ok(Prepared {
        url: signed.url,
        headers,
        body: signed.body,
    })
}

fn add_overrides(headers: &mut Vec<(String, String)>, args: &SendArgs) {
    for (name, value) in &args.headers {
        set(headers, name, value);
    }
}

/// Sets a header, replacing one of the same name (names are case-blind).
fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
}

/// The `--file` payload; `None` without one.
async fn read_payload(file: Option<&PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt as _;
    match file {
        None => Ok(None),
        Some(path) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut body)
                .await
                .context("cannot read the payload from stdin")?;
            Ok(Some(body))
        }
        Some(path) => tokio::fs::read(path)
            .await
            .map(Some)
            .with_context(|| format!("cannot read the payload file {}", path.display())),
    }
}

/// Sends the webhook and prints the answer; fails unless it is 2xx.
pub(crate) async fn run(args: SendArgs) -> anyhow::Result<()> {
    let file = read_payload(args.file.as_ref()).await?;
    check_input(&args).await?;
    let now_secs = agent::now_ms() / 1000;
    let body =
        file.unwrap_or_else(|| default_payload(args.integration.as_deref(), &args.event, now_secs));
    let prepared = prepare(&args, &body, now_secs)?;
    let mut header_map = HeaderMap::new();
    for (name, value) in &prepared.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(value)
            .with_context(|| format!("invalid value for header {name}"))?;
        header_map.insert(header, value);
    }
    let mut http = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &args.ca_file {
        for cert in crate::tls::ca_certificates(ca)? {
            http = http.add_root_certificate(cert);
        }
    }
    let http = http.build().context("cannot set up the HTTP client")?;
    let response = http
        .post(&prepared.url)
        .headers(header_map)
        .body(prepared.body)
        .send()
        .await
        .with_context(|| format!("cannot send to {}", args.url))?;
    let status = response.status();
    let answer = response
        .bytes()
        .await
        .with_context(|| format!("cannot read the answer of {}", args.url))?;
    crate::outln!("HTTP {status}");
    if !answer.is_empty() {
        crate::outln!("{}", clean_multiline(&String::from_utf8_lossy(&answer)));
    }
    if !status.is_success() {
        anyhow::bail!("{} answered HTTP {}", clean(&args.url), status.as_u16());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(integration: Option<&str>, secret: Option<&str>) -> SendArgs {
        SendArgs {
            url: "http://relay.example:8080/v1/webhooks/x".into(),
            integration: integration.map(str::to_owned),
            secret: secret.map(Secret::new),
            file: None,
            event: "ping".into(),
            headers: Vec::new(),
            content_type: "application/json".into(),
            generic: GenericHmacArgs::default(),
            token: None,
            tenant: None,
            ca_file: None,
        }
    }

    #[test]
    fn the_input_of_a_webhook_url() {
        assert_eq!(
            input_of("https://relay.example/base/v1/webhooks/abc/x/y?q=1"),
            Some(("https://relay.example/base".to_owned(), "abc".to_owned()))
        );
        assert_eq!(
            input_of("http://127.0.0.1:8080/v1/webhooks/abc"),
            Some(("http://127.0.0.1:8080/".to_owned(), "abc".to_owned()))
        );
        assert_eq!(input_of("http://127.0.0.1:8080/api/webhooks/github"), None);
        assert_eq!(input_of("http://127.0.0.1:8080/v1/webhooks/"), None);
    }

    fn names(headers: &[(String, String)]) -> Vec<String> {
        headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn unsigned_send_has_only_the_content_type() {
        let headers = prepare(&args(None, None), DEFAULT_PAYLOAD, 0)
            .unwrap()
            .headers;
        assert_eq!(
            headers,
            vec![("content-type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn github_send_is_signed_and_typed() {
        let a = args(Some("github"), Some("s3cret"));
        let headers = prepare(&a, DEFAULT_PAYLOAD, 1_700_000_000).unwrap().headers;
        let integration = verify::Integration::new(IntegrationKind::Github, None).unwrap();
        let out = verify::Outgoing {
            url: &a.url,
            content_type: "application/json",
            body: DEFAULT_PAYLOAD,
            event: "ping",
            now_secs: 1_700_000_000,
        };
        let signed = verify::sign(&integration, "s3cret", &out).unwrap().headers;
        // The delivery id is fresh per call; the signatures are deterministic.
        let signatures: Vec<_> = signed
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("x-github-delivery"))
            .collect();
        assert!(!signatures.is_empty());
        for pair in signatures {
            assert!(headers.contains(pair), "{headers:?} lacks {pair:?}");
        }
        assert!(headers.contains(&("X-GitHub-Event".to_owned(), "ping".to_owned())));
        assert!(names(&headers).contains(&"x-github-delivery".to_owned()));
    }

    #[test]
    fn overrides_replace_generated_headers() {
        let mut a = args(Some("github"), Some("s"));
        a.headers = vec![("x-github-event".into(), "push".into())];
        let headers = prepare(&a, b"{}", 0).unwrap().headers;
        let events: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-github-event"))
            .collect();
        assert_eq!(
            events,
            vec![&("x-github-event".to_owned(), "push".to_owned())]
        );
    }

    #[test]
    fn generic_hmac_uses_its_flags() {
        let mut a = args(Some("generic-hmac"), Some("s"));
        assert!(prepare(&a, b"{}", 0).is_err());
        a.generic.generic_header = Some("X-Signature".into());
        let headers = prepare(&a, b"{}", 0).unwrap().headers;
        assert!(!names(&headers).contains(&"x-github-event".to_owned()));
        assert!(headers.len() > 1);
    }

    #[test]
    fn every_integration_can_be_sent() {
        for &kind in IntegrationKind::ALL {
            let secret = match kind {
                IntegrationKind::Discord => {
                    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
                }
                IntegrationKind::Sendgrid => {
                    "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
                }
                IntegrationKind::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                _ => "s3cret",
            };
            let mut a = args(Some(kind.name()), Some(secret));
            if kind == IntegrationKind::GenericHmac {
                a.generic.generic_header = Some("X-Signature".into());
            }
            let body = default_payload(Some(kind.name()), "ping", 1_700_000_000);
            let p = prepare(&a, &body, 1_700_000_000).unwrap();
            assert!(
                p.headers.len() > 1 || kind == IntegrationKind::Mailgun,
                "{kind:?}"
            );
        }
        let bad_key = args(Some("discord"), Some("not hex"));
        assert!(prepare(&bad_key, DEFAULT_PAYLOAD, 0).is_err());
    }

    #[test]
    fn the_default_payload_has_the_providers_shape() {
        let json = |kind: &str| -> serde_json::Value {
            serde_json::from_slice(&default_payload(Some(kind), "ping", 1_700_000_000)).unwrap()
        };
        assert_eq!(json("sendgrid")[0]["event"], "ping");
        assert_eq!(json("linear")["webhookTimestamp"], 1_700_000_000_000_i64);
        assert_eq!(json("github"), serde_json::json!({"zen": "hookrelay test"}));
        assert_eq!(default_payload(None, "ping", 0), DEFAULT_PAYLOAD);
    }

    #[test]
    fn mistakes_are_refused() {
        for a in [
            args(Some("github"), None),
            args(Some("no-such-provider"), Some("s")),
            args(None, Some("s")),
        ] {
            assert!(prepare(&a, b"{}", 0).is_err());
        }
        let mut a = args(Some("github"), Some("s"));
        a.generic.generic_header = Some("X".into());
        assert!(prepare(&a, b"{}", 0).is_err());
    }
}
