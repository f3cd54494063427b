//! What every HMAC scheme shares: computing the MAC, decoding a received
//! signature (hex or base64) into a stack buffer, and comparing it in
//! constant time against each secret in turn. Depends on `model` for the
//! algorithm and encoding names and on the RustCrypto crates.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use std::borrow::Cow;

use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use model::{HmacAlgorithm, Secret, SignatureEncoding};
use subtle::ConstantTimeEq;

use crate::{header, Rejection, Request};

/// SHA-512, the longest digest we support.
const MAX_DIGEST_LEN: usize = 64;

/// Standard alphabet, padding optional: senders disagree on padding, and the
/// MAC is compared on decoded bytes, so accepting both costs nothing.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What [`Digest::encode`] writes: the common, padded form.
pub(crate) const BASE64_PADDED: GeneralPurpose = base64::engine::general_purpose::STANDARD;

const MALFORMED: Rejection = Rejection::InvalidSignature("malformed signature");

/// A MAC or a decoded signature, on the stack. Deliberately not `Debug`, so
/// a digest cannot end up in a log line.
#[derive(Clone, Copy)]
pub(crate) struct Digest {
    bytes: [u8; MAX_DIGEST_LEN],
    len: usize,
}

impl Digest {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn zeroed(len: usize) -> Digest {
        Digest {
            bytes: [0; MAX_DIGEST_LEN],
            len: len.min(MAX_DIGEST_LEN),
        }
    }

    fn copy_from(src: &[u8]) -> Digest {
        let mut d = Digest::zeroed(src.len());
        let len = d.len;
        d.bytes[..len].copy_from_slice(&src[..len]);
        d
    }

    /// Encoded as a sender would put it in a header (lowercase hex, padded
    /// base64).
    pub(crate) fn encode(&self, encoding: SignatureEncoding) -> String {
        match encoding {
            SignatureEncoding::Hex => hex::encode(self.as_bytes()),
            SignatureEncoding::Base64 => BASE64_PADDED.encode(self.as_bytes()),
        }
    }
}

fn digest_len(algorithm: HmacAlgorithm) -> usize {
    match algorithm {
        HmacAlgorithm::Sha1 => 20,
        HmacAlgorithm::Sha256 => 32,
        HmacAlgorithm::Sha512 => 64,
    }
}

/// HMAC of the concatenation of `parts` (schemes such as Slack's sign
/// `v0:{timestamp}:{body}`; passing parts avoids copying the body).
pub(crate) fn hmac(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Digest {
    match algorithm {
        HmacAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, parts),
        HmacAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, parts),
        HmacAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, parts),
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Digest {
    let mut mac = <M as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length: RFC 2104 hashes long keys and pads short ones");
    for part in parts {
        mac.update(part);
    }
    Digest::copy_from(&mac.finalize().into_bytes())
}

/// Decodes a received signature (prefix already stripped) for `algorithm`.
/// The length is checked against the digest size before decoding, so the
/// work is bounded by the digest, not by the header.
pub(crate) fn decode(
    value: &[u8],
    encoding: SignatureEncoding,
    algorithm: HmacAlgorithm,
) -> Result<Digest, Rejection> {
    let len = digest_len(algorithm);
    let mut out = Digest::zeroed(len);
    match encoding {
        SignatureEncoding::Hex => {
            // `hex` accepts both cases, which is what senders do.
            hex::decode_to_slice(value, &mut out.bytes[..out.len]).map_err(|_| MALFORMED)?;
        }
        SignatureEncoding::Base64 => {
            let unpadded = (len * 4).div_ceil(3);
            let padded = len.div_ceil(3) * 4;
            if !(unpadded..=padded).contains(&value.len()) {
                return Err(MALFORMED);
            }
            // 88 base64 characters decode to at most 66 bytes.
            let mut buf = [0u8; MAX_DIGEST_LEN + 8];
            let written = BASE64
                .decode_slice(value, &mut buf)
                .map_err(|_| MALFORMED)?;
            if written != out.len {
                return Err(MALFORMED);
            }
            out = Digest::copy_from(buf.get(..written).ok_or(MALFORMED)?);
        }
    }
    Ok(out)
}

/// Most signatures one header may carry (Stripe's, Standard Webhooks' and
/// PagerDuty's lists during a rotation hold two or three); more are ignored.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// The decoded signatures of one header that names several, on the stack.
pub(crate) struct Candidates {
    digests: [Digest; MAX_CANDIDATES],
    len: usize,
}

impl Candidates {
    /// Decodes each of `values` for `algorithm`. Values that do not decode
    /// are skipped, as providers ask (a list may carry a scheme we do not
    /// know); none at all is `malformed signature`.
    pub(crate) fn decode<'v>(
        values: impl IntoIterator<Item = &'v [u8]>,
        encoding: SignatureEncoding,
        algorithm: HmacAlgorithm,
    ) -> Result<Candidates, Rejection> {
        let mut out = Candidates {
            digests: [Digest::zeroed(0); MAX_CANDIDATES],
            len: 0,
        };
        for value in values.into_iter().take(MAX_CANDIDATES) {
            if let Ok(d) = decode(value, encoding, algorithm) {
                out.digests[out.len] = d;
                out.len += 1;
            }
        }
        if out.len == 0 {
            return Err(MALFORMED);
        }
        Ok(out)
    }

    pub(crate) fn as_slice(&self) -> &[Digest] {
        &self.digests[..self.len]
    }
}

/// Ok when the MAC of `parts` under one of `secrets`, tried in order, equals
/// one of `expected`, each secret turned into key bytes by `key` (`None`:
/// this secret cannot be a key of the scheme, try the next). Every
/// comparison is constant-time.
pub(crate) fn check_keyed<'s>(
    algorithm: HmacAlgorithm,
    secrets: &'s [Secret],
    key: impl Fn(&'s Secret) -> Option<Cow<'s, [u8]>>,
    parts: &[&[u8]],
    expected: &[Digest],
) -> Result<(), Rejection> {
    if secrets.is_empty() {
        return Err(Rejection::InvalidSignature("no secret configured"));
    }
    for secret in secrets {
        let Some(key) = key(secret) else { continue };
        let computed = hmac(algorithm, &key, parts);
        let mut matched = subtle::Choice::from(0);
        for e in expected {
            matched |= computed.as_bytes().ct_eq(e.as_bytes());
        }
        if bool::from(matched) {
            return Ok(());
        }
    }
    Err(Rejection::InvalidSignature("signature mismatch"))
}

/// Token schemes (GitLab, Better Stack): Ok when `token` equals one of
/// `secrets`. Both sides are hashed first so the comparison is constant-time
/// over equal lengths and leaks not even the secret's length.
pub(crate) fn check_token(token: &[u8], secrets: &[Secret]) -> Result<(), Rejection> {
    use sha2::Digest as _;
    if secrets.is_empty() {
        return Err(Rejection::InvalidSignature("no secret configured"));
    }
    let received = sha2::Sha256::digest(token);
    for secret in secrets {
        let want = sha2::Sha256::digest(secret.expose().as_bytes());
        if bool::from(received.ct_eq(&want)) {
            return Ok(());
        }
    }
    Err(Rejection::InvalidSignature("token mismatch"))
}

/// Ok when the MAC of `parts` under one of `secrets`, tried in order, equals
/// `expected`. Each comparison is constant-time; stopping at the first match
/// only reveals which rotation slot matched, to a sender who already holds a
/// valid signature.
pub(crate) fn check(
    algorithm: HmacAlgorithm,
    secrets: &[Secret],
    parts: &[&[u8]],
    expected: &Digest,
) -> Result<(), Rejection> {
    check_keyed(
        algorithm,
        secrets,
        |s| Some(Cow::Borrowed(s.expose().as_bytes())),
        parts,
        std::slice::from_ref(expected),
    )
}

/// Decodes one received signature and checks it: the whole of a scheme that
/// MACs with the secret as text.
pub(crate) fn check_encoded(
    algorithm: HmacAlgorithm,
    encoding: SignatureEncoding,
    value: &[u8],
    secrets: &[Secret],
    parts: &[&[u8]],
) -> Result<(), Rejection> {
    let expected = decode(value, encoding, algorithm)?;
    check(algorithm, secrets, parts, &expected)
}

/// The most common scheme whole: header `name` holds `prefix` and then the
/// encoded MAC of the raw body, keyed with the secret as text (Bitbucket,
/// Intercom, Linear, Sentry, Shopify, Typeform, Vercel).
pub(crate) fn check_body_mac(
    req: &Request<'_>,
    name: &str,
    prefix: &[u8],
    algorithm: HmacAlgorithm,
    encoding: SignatureEncoding,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let value = header::signature(req.headers, name)?;
    let encoded = value
        .strip_prefix(prefix)
        .ok_or(Rejection::InvalidSignature("wrong signature prefix"))?;
    check_encoded(algorithm, encoding, encoded, secrets, &[req.body])
}

#[cfg(test)]
mod tests {
    use super::*;

    const JEFE: &[u8] = b"Jefe";
    const WANT: &[u8] = b"what do ya want for nothing?";

    /// RFC 2202 §3 / RFC 4231 §4.3 test case 2, hex and base64.
    const VECTORS: [(HmacAlgorithm, &str, &str); 3] = [
        (
            HmacAlgorithm::Sha1,
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            "7/zfauXrL6LSdBbV8YTfnCWafHk=",
        ),
        (
            HmacAlgorithm::Sha256,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=",
        ),
        (
            HmacAlgorithm::Sha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw==",
        ),
    ];

    #[test]
    fn rfc_vectors_compute_and_encode() {
        for (alg, hex, b64) in VECTORS {
            let d = hmac(alg, JEFE, &[WANT]);
            assert_eq!(d.encode(SignatureEncoding::Hex), hex);
            assert_eq!(d.encode(SignatureEncoding::Base64), b64);
            let split = hmac(alg, JEFE, &[&WANT[..7], &WANT[7..]]);
            assert_eq!(split.as_bytes(), d.as_bytes(), "parts are concatenated");
        }
    }

    #[test]
    fn decode_accepts_both_hex_cases_and_optional_base64_padding() {
        for (alg, hex, b64) in VECTORS {
            let want = hmac(alg, JEFE, &[WANT]);
            let upper = hex.to_ascii_uppercase();
            let unpadded = b64.trim_end_matches('=');
            for (value, enc) in [
                (hex, SignatureEncoding::Hex),
                (upper.as_str(), SignatureEncoding::Hex),
                (b64, SignatureEncoding::Base64),
                (unpadded, SignatureEncoding::Base64),
            ] {
                let got = decode(value.as_bytes(), enc, alg).unwrap();
                assert_eq!(got.as_bytes(), want.as_bytes(), "{alg:?} {value}");
            }
        }
    }

    #[test]
    fn decode_refuses_wrong_lengths_and_alphabets() {
        let (alg, hex, b64) = VECTORS[1];
        let cases: Vec<(Vec<u8>, SignatureEncoding)> = vec![
            (hex[..62].into(), SignatureEncoding::Hex),
            (format!("{hex}00").into(), SignatureEncoding::Hex),
            (hex[..63].into(), SignatureEncoding::Hex),
            (hex.replace('5', "g").into(), SignatureEncoding::Hex),
            (Vec::new(), SignatureEncoding::Hex),
            (vec![b'0'; 100_000], SignatureEncoding::Hex),
            (b64[..40].into(), SignatureEncoding::Base64),
            (format!("{b64}AAAA").into(), SignatureEncoding::Base64),
            (b64.replace('W', "-").into(), SignatureEncoding::Base64),
            (b64.replace('W', "*").into(), SignatureEncoding::Base64),
            (b64.replace('=', "A").into(), SignatureEncoding::Base64),
            (vec![b'A'; 100_000], SignatureEncoding::Base64),
            // A sha1-sized value where sha256 is configured.
            (VECTORS[0].1.into(), SignatureEncoding::Hex),
        ];
        for (value, enc) in cases {
            assert!(
                decode(&value, enc, alg).is_err(),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
    }

    #[test]
    fn candidates_skip_what_does_not_decode() {
        let (alg, hex, _) = VECTORS[1];
        let values: [&[u8]; 3] = [b"zz", hex.as_bytes(), b""];
        let c = Candidates::decode(values, SignatureEncoding::Hex, alg).unwrap();
        assert_eq!(c.as_slice().len(), 1);
        assert_eq!(
            check_keyed(
                alg,
                &["Jefe".into()],
                |s| Some(Cow::Borrowed(s.expose().as_bytes())),
                &[WANT],
                c.as_slice()
            ),
            Ok(())
        );
        let none: [&[u8]; 2] = [b"zz", b"00"];
        assert!(Candidates::decode(none, SignatureEncoding::Hex, alg).is_err());
        let many = vec![hex.as_bytes(); 100];
        assert_eq!(
            Candidates::decode(many, SignatureEncoding::Hex, alg)
                .unwrap()
                .as_slice()
                .len(),
            MAX_CANDIDATES
        );
    }

    #[test]
    fn tokens_compare_whole() {
        let secrets = ["new".into(), "old-token".into()];
        assert_eq!(check_token(b"old-token", &secrets), Ok(()));
        assert!(check_token(b"old-toke", &secrets).is_err());
        assert!(check_token(b"", &secrets).is_err());
        assert!(check_token(b"new", &[]).is_err());
    }

    #[test]
    fn check_tries_secrets_in_order_and_fails_closed() {
        let expected = hmac(HmacAlgorithm::Sha256, JEFE, &[WANT]);
        let alg = HmacAlgorithm::Sha256;
        assert_eq!(check(alg, &["Jefe".into()], &[WANT], &expected), Ok(()));
        assert_eq!(
            check(alg, &["old".into(), "Jefe".into()], &[WANT], &expected),
            Ok(())
        );
        assert_eq!(
            check(alg, &["nope".into()], &[WANT], &expected),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
        assert_eq!(
            check(alg, &[], &[WANT], &expected),
            Err(Rejection::InvalidSignature("no secret configured"))
        );
        let sha1 = hmac(HmacAlgorithm::Sha1, JEFE, &[WANT]);
        assert!(
            check(alg, &["Jefe".into()], &[WANT], &sha1).is_err(),
            "length differs"
        );
    }
}
