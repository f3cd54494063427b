//! `generic-hmac`: an HMAC of the raw body in a configured header, with a
//! configured algorithm (sha1, sha256, sha512), encoding (hex in either case,
//! or base64 with or without padding) and optional prefix (DESIGN §8). No
//! delivery id, event type or timestamp; any body. Depends on the crate's
//! shared modules only.

use model::{GenericHmac, Secret};

use crate::sign::{Outgoing, Signed};
use crate::{header, signature, Rejection, Request};

pub(crate) fn verify(
    cfg: &GenericHmac,
    req: &Request<'_>,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    // An invalid configured header name finds nothing: "missing", not a panic.
    let value = header::signature(req.headers, cfg.header.as_str())?;
    let value = strip_prefix(value, cfg.prefix.as_deref())?;
    let expected = signature::decode(value, cfg.encoding, cfg.algorithm)?;
    signature::check(cfg.algorithm, secrets, &[req.body], &expected)
}

/// A configured prefix is required and matched ignoring ASCII case: it names
/// a scheme (`sha256=`, `SHA256=`), and the MAC after it is what is checked.
fn strip_prefix<'v>(value: &'v [u8], prefix: Option<&str>) -> Result<&'v [u8], Rejection> {
    let Some(prefix) = prefix.map(str::as_bytes).filter(|p| !p.is_empty()) else {
        return Ok(value);
    };
    match (value.get(..prefix.len()), value.get(prefix.len()..)) {
        (Some(head), Some(rest)) if head.eq_ignore_ascii_case(prefix) => Ok(rest),
        _ => Err(Rejection::InvalidSignature("wrong signature prefix")),
    }
}

/// The configured header, as the sender would set it.
pub(crate) fn sign(cfg: &GenericHmac, secret: &str, out: &Outgoing<'_>) -> Signed {
    let mac = signature::hmac(cfg.algorithm, secret.as_bytes(), &[out.body]);
    let prefix = cfg.prefix.as_deref().unwrap_or("");
    Signed::of(out).header(&cfg.header, format!("{prefix}{}", mac.encode(cfg.encoding)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use model::{HmacAlgorithm, SignatureEncoding};

    const KEY: &str = "Jefe";
    const BODY: &[u8] = b"what do ya want for nothing?";

    fn cfg(
        algorithm: HmacAlgorithm,
        encoding: SignatureEncoding,
        prefix: Option<&str>,
    ) -> GenericHmac {
        GenericHmac {
            header: "X-Signature".into(),
            algorithm,
            encoding,
            prefix: prefix.map(str::to_owned),
        }
    }

    fn run(
        cfg: &GenericHmac,
        value: Option<&str>,
        body: &[u8],
        secrets: &[&str],
    ) -> Result<(), Rejection> {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert("x-signature", HeaderValue::from_str(v).unwrap());
        }
        let secrets: Vec<Secret> = secrets.iter().map(|&s| s.into()).collect();
        verify(
            cfg,
            &Request {
                headers: &h,
                body,
                public_url: "",
            },
            &secrets,
        )
    }

    /// RFC 2202 / RFC 4231 test case 2, so the table does not trust our own
    /// signer.
    #[test]
    fn every_algorithm_and_encoding_with_and_without_prefix() {
        use HmacAlgorithm::*;
        use SignatureEncoding::*;
        let table = [
            (Sha1, Hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (Sha1, Base64, "7/zfauXrL6LSdBbV8YTfnCWafHk="),
            (Sha256, Hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (Sha256, Base64, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="),
            (
                Sha512,
                Hex,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
            (
                Sha512,
                Base64,
                "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw==",
            ),
        ];
        for (alg, enc, sig) in table {
            let plain = cfg(alg, enc, None);
            let prefixed = cfg(alg, enc, Some("v1="));
            let with_prefix = format!("v1={sig}");
            let ctx = format!("{alg:?} {enc:?}");
            let out = crate::sign::tests_outgoing(BODY);
            assert_eq!(
                sign(&plain, KEY, &out).headers,
                vec![("X-Signature".into(), sig.into())],
                "{ctx}"
            );
            assert_eq!(
                sign(&prefixed, KEY, &out).headers[0].1,
                with_prefix,
                "{ctx}"
            );
            assert_eq!(run(&plain, Some(sig), BODY, &[KEY]), Ok(()), "{ctx}");
            assert_eq!(
                run(&prefixed, Some(&with_prefix), BODY, &[KEY]),
                Ok(()),
                "{ctx}"
            );
            assert_eq!(
                run(&prefixed, Some(&format!("V1={sig}")), BODY, &[KEY]),
                Ok(()),
                "{ctx}"
            );
            assert_eq!(
                run(&prefixed, Some(sig), BODY, &[KEY]),
                Err(Rejection::InvalidSignature("wrong signature prefix")),
                "{ctx}"
            );
            assert_eq!(
                run(&plain, Some(&with_prefix), BODY, &[KEY]),
                Err(Rejection::InvalidSignature("malformed signature")),
                "{ctx}"
            );
            assert_eq!(
                run(&plain, Some(sig), b"what do ya want for nothing!", &[KEY]),
                Err(Rejection::InvalidSignature("signature mismatch")),
                "{ctx}"
            );
            assert_eq!(
                run(&plain, Some(sig), BODY, &["new", KEY]),
                Ok(()),
                "{ctx} rotation"
            );
        }
    }

    #[test]
    fn encoding_details() {
        let hex = cfg(
            HmacAlgorithm::Sha256,
            SignatureEncoding::Hex,
            Some("sha256="),
        );
        let upper = "sha256=5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843";
        assert_eq!(run(&hex, Some(upper), BODY, &[KEY]), Ok(()));
        let b64 = cfg(HmacAlgorithm::Sha256, SignatureEncoding::Base64, None);
        let unpadded = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM";
        assert_eq!(run(&b64, Some(unpadded), BODY, &[KEY]), Ok(()));
        let hex_where_b64 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            run(&b64, Some(hex_where_b64), BODY, &[KEY]),
            Err(Rejection::InvalidSignature("malformed signature"))
        );
    }

    #[test]
    fn header_failures() {
        let c = cfg(
            HmacAlgorithm::Sha256,
            SignatureEncoding::Hex,
            Some("sha256="),
        );
        let sig = |r| Err(Rejection::InvalidSignature(r));
        assert_eq!(run(&c, None, BODY, &[KEY]), sig("missing signature header"));
        assert_eq!(
            run(&c, Some(""), BODY, &[KEY]),
            sig("empty signature header")
        );
        assert_eq!(
            run(&c, Some("sha256="), BODY, &[KEY]),
            sig("malformed signature")
        );
        assert_eq!(
            run(&c, Some("sha2"), BODY, &[KEY]),
            sig("wrong signature prefix")
        );
        let huge = format!("sha256={}", "0".repeat(4096));
        assert_eq!(
            run(&c, Some(&huge), BODY, &[KEY]),
            sig("signature header too long")
        );
        let bad_name = GenericHmac {
            header: "not a header name".into(),
            ..c
        };
        assert_eq!(
            run(&bad_name, Some("x"), BODY, &[KEY]),
            sig("missing signature header")
        );
    }
}
