//! The generic-hmac integration on arbitrary configurations, signature
//! values and bodies: verify never panics, and a body signed by
//! `verify::sign` always verifies.

#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use model::{GenericHmac, HmacAlgorithm, Secret, SignatureEncoding};
use verify::{sign, Integration, Outgoing, Preflight, Request};

type Input<'a> = (
    u8,               // algorithm and encoding
    Option<&'a str>,  // prefix
    Option<&'a [u8]>, // received signature value
    &'a str,          // secret
    &'a [u8],         // body
);

fuzz_target!(|input: Input<'_>| {
    let (choice, prefix, value, secret, body) = input;
    let algorithm = match choice % 3 {
        0 => HmacAlgorithm::Sha1,
        1 => HmacAlgorithm::Sha256,
        _ => HmacAlgorithm::Sha512,
    };
    let encoding = if choice & 0x80 == 0 {
        SignatureEncoding::Hex
    } else {
        SignatureEncoding::Base64
    };
    let cfg = GenericHmac {
        header: "X-Signature".into(),
        algorithm,
        encoding,
        prefix: prefix.map(str::to_owned),
    };
    let integration = Integration::GenericHmac(cfg);
    let secrets = [Secret::new(secret)];

    let mut headers = HeaderMap::new();
    if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert("x-signature", value);
    }
    let req = Request {
        headers: &headers,
        body,
        public_url: "",
    };
    if let Ok(preflight) = integration.preflight(&req, 0, 300) {
        let _ = integration.verify(&req, &preflight, &secrets);
        let _ = integration.parse(&req, preflight);
    }

    // Round trip, when the prefix can travel in a header at all and leaves
    // the value within the bound verify enforces (sign does not validate
    // configuration; model validation is the place for that).
    let mut signed = HeaderMap::new();
    let out = Outgoing {
        url: "",
        content_type: "application/json",
        body,
        event: "push",
        now_secs: 0,
    };
    let signature = sign(&integration, secret, &out).expect("generic-hmac signs any body");
    for (_, value) in signature.headers {
        if value.len() > verify::MAX_SIGNATURE_HEADER_LEN {
            return;
        }
        match HeaderValue::from_str(&value) {
            Ok(value) => signed.insert("x-signature", value),
            Err(_) => return,
        };
    }
    let req = Request {
        headers: &signed,
        body,
        public_url: "",
    };
    assert_eq!(
        integration.verify(&req, &Preflight::default(), &secrets),
        Ok(())
    );
});
