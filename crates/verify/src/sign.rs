//! The sending side: headers that make a body verify, for `hookrelay send`,
//! tests, fuzzing and benchmarks. One arm per integration, each delegating
//! to its provider module. Depends on the provider modules.

use crate::{generic_hmac, github, Integration};

/// Headers that make `body` verify under `integration` with `secret` at
/// `now_secs`.
///
/// - github: `X-Hub-Signature-256` (`sha256=<hex>`), `X-Hub-Signature`
///   (`sha1=<hex>`) and a fresh random `X-GitHub-Delivery` (UUID v4, so two
///   sends of one body are not deduplicated). `X-GitHub-Event` is the
///   caller's choice and is not added.
/// - generic-hmac: the configured header, prefix included.
///
/// ```
/// let headers = verify::sign(&verify::Integration::Github, "It's a Secret to Everybody", b"Hello, World!", 0);
/// assert_eq!(headers[0].0, "X-Hub-Signature-256");
/// assert_eq!(headers[0].1, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn sign(
    integration: &Integration,
    secret: &str,
    body: &[u8],
    now_secs: i64,
) -> Vec<(String, String)> {
    // Neither scheme here signs a timestamp; Stripe, Slack and Standard
    // Webhooks will.
    let _ = now_secs;
    match integration {
        Integration::Github => github::sign(secret, body),
        Integration::GenericHmac(cfg) => generic_hmac::sign(cfg, secret, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rejection, Request};
    use http::{HeaderMap, HeaderName, HeaderValue};
    use model::{GenericHmac, HmacAlgorithm, Secret, SignatureEncoding};
    use proptest::prelude::*;
    use proptest::sample::Index;

    fn integration() -> impl Strategy<Value = Integration> {
        let generic = (
            prop_oneof![
                Just("X-Signature"),
                Just("x-hub-signature-256"),
                Just("X-Webhook-Sig")
            ],
            prop_oneof![
                Just(HmacAlgorithm::Sha1),
                Just(HmacAlgorithm::Sha256),
                Just(HmacAlgorithm::Sha512)
            ],
            prop_oneof![
                Just(SignatureEncoding::Hex),
                Just(SignatureEncoding::Base64)
            ],
            proptest::option::of("[a-zA-Z0-9=:_-]{0,12}"),
        )
            .prop_map(|(header, algorithm, encoding, prefix)| {
                Integration::GenericHmac(GenericHmac {
                    header: header.into(),
                    algorithm,
                    encoding,
                    prefix,
                })
            });
        prop_oneof![Just(Integration::Github), generic]
    }

    fn verify_signed(
        integration: &Integration,
        signed_with: &str,
        secrets: &[Secret],
        signed: &[u8],
        sent: &[u8],
    ) -> Result<(), Rejection> {
        let mut headers = HeaderMap::new();
        for (k, v) in sign(integration, signed_with, signed, 1_700_000_000) {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Rejection::UnsupportedMediaType)?;
            let value = HeaderValue::from_str(&v).map_err(|_| Rejection::UnsupportedMediaType)?;
            headers.insert(name, value);
        }
        let req = Request {
            headers: &headers,
            body: sent,
            public_url: "https://relay.example/",
        };
        integration.preflight(&req, 1_700_000_000, 300)?;
        integration.verify(&req, secrets)
    }

    proptest! {
        #[test]
        fn verify_of_sign_holds(
            integration in integration(),
            secret in ".{0,64}",
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let secrets = [Secret::new("an older secret"), Secret::new(secret.clone())];
            prop_assert_eq!(verify_signed(&integration, &secret, &secrets, &body, &body), Ok(()));
        }

        #[test]
        fn any_flipped_body_byte_fails(
            integration in integration(),
            secret in ".{0,64}",
            body in proptest::collection::vec(any::<u8>(), 1..2048),
            at in any::<Index>(),
            mask in 1u8..=255,
        ) {
            let mut tampered = body.clone();
            let i = at.index(tampered.len());
            tampered[i] ^= mask;
            prop_assert_eq!(
                verify_signed(&integration, &secret, &[Secret::new(secret.clone())], &body, &tampered),
                Err(Rejection::InvalidSignature("signature mismatch"))
            );
        }

        #[test]
        fn another_secret_fails(
            integration in integration(),
            secret in ".{0,64}",
            other in ".{0,64}",
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            prop_assume!(secret != other);
            prop_assert!(verify_signed(&integration, &secret, &[Secret::new(other)], &body, &body).is_err());
        }
    }

    #[test]
    fn github_delivery_ids_are_fresh() {
        let id = |h: Vec<(String, String)>| h.into_iter().find(|(k, _)| k == "X-GitHub-Delivery");
        let a = id(sign(&Integration::Github, "s", b"{}", 0));
        let b = id(sign(&Integration::Github, "s", b"{}", 0));
        assert!(a.is_some());
        assert_ne!(a, b);
    }
}
