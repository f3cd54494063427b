//! Encryption at rest as every backend applies it: what of a record is
//! sealed, and under which associated data. A backend stores the sealed
//! bytes and the key id beside them, and never the plaintext.
//!
//! - An event's query, headers (as JSON) and body are one sealed payload,
//!   bound to the event id. Ephemeral events have no payload at all.
//! - An input's secrets (a JSON list) are one sealed value, bound to the
//!   input id.
//! - A bucket's auth settings (JSON, with its password or token) are one
//!   sealed value, bound to the bucket id; a tunnel's likewise, bound to
//!   the tunnel id.
//!
//! Depends on `crypto` for the cipher; the plaintext layout is here so that
//! SQLite and Redis read each other's records.

use crypto::{KeyId, Keyring, OpenError};

use crate::{Error, Result};

/// Associated data of an event's payload: its id, namespaced so that an
/// input's sealed secrets can never pass for an event's payload.
fn event_aad(event_id: &str) -> Vec<u8> {
    [b"event\0".as_slice(), event_id.as_bytes()].concat()
}

fn input_aad(input_id: &str) -> Vec<u8> {
    [b"input\0".as_slice(), input_id.as_bytes()].concat()
}

fn bucket_aad(bucket_id: &str) -> Vec<u8> {
    [b"bucket\0".as_slice(), bucket_id.as_bytes()].concat()
}

/// Seals a bucket's auth settings (already JSON).
pub(crate) fn seal_bucket_auth(
    keys: &Keyring,
    bucket_id: &str,
    auth_json: &str,
) -> Result<(Vec<u8>, KeyId)> {
    let sealed = keys
        .seal(&bucket_aad(bucket_id), auth_json.as_bytes())
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok((sealed, keys.active()))
}

/// Opens a bucket's auth settings; a failure is `Corrupt`, like secrets:
/// a bucket whose credential cannot be read must not be served as open.
pub(crate) fn open_bucket_auth(keys: &Keyring, bucket_id: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    keys.open(&bucket_aad(bucket_id), sealed)
        .map_err(|e| Error::Corrupt(format!("auth of bucket {bucket_id}: {e}")))
}

fn tunnel_aad(tunnel_id: &str) -> Vec<u8> {
    [b"tunnel\0".as_slice(), tunnel_id.as_bytes()].concat()
}

/// Seals a tunnel's auth settings (JSON, as a bucket's).
pub(crate) fn seal_tunnel_auth(
    keys: &Keyring,
    tunnel_id: &str,
    auth_json: &str,
) -> Result<(Vec<u8>, KeyId)> {
    let sealed = keys
        .seal(&tunnel_aad(tunnel_id), auth_json.as_bytes())
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok((sealed, keys.active()))
}

/// Opens a tunnel's auth settings; a failure is `Corrupt`: a tunnel whose
/// credential cannot be read must not be served as open.
pub(crate) fn open_tunnel_auth(keys: &Keyring, tunnel_id: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    keys.open(&tunnel_aad(tunnel_id), sealed)
        .map_err(|e| Error::Corrupt(format!("auth of tunnel {tunnel_id}: {e}")))
}

fn function_aad(function_id: &str) -> Vec<u8> {
    [b"function\0".as_slice(), function_id.as_bytes()].concat()
}

/// Seals a function's config (a JSON object of its values).
pub(crate) fn seal_function_config(
    keys: &Keyring,
    function_id: &str,
    config_json: &str,
) -> Result<(Vec<u8>, KeyId)> {
    let sealed = keys
        .seal(&function_aad(function_id), config_json.as_bytes())
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok((sealed, keys.active()))
}

/// Opens a function's config; a failure is `Corrupt`.
pub(crate) fn open_function_config(
    keys: &Keyring,
    function_id: &str,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    keys.open(&function_aad(function_id), sealed)
        .map_err(|e| Error::Corrupt(format!("config of function {function_id}: {e}")))
}

/// The plaintext of an event's payload, before sealing:
/// `[u32 LE query length][query][u32 LE headers length][headers JSON][body]`.
/// Built off the writer thread (it copies the body), sealed on it, where the
/// event id is minted.
pub(crate) fn event_plaintext(query: &str, headers_json: &str, body: &[u8]) -> Result<Vec<u8>> {
    let len = |s: &str| {
        u32::try_from(s.len())
            .map(u32::to_le_bytes)
            .map_err(|_| Error::Unavailable("query or headers too large".into()))
    };
    let mut out = Vec::with_capacity(8 + query.len() + headers_json.len() + body.len());
    out.extend_from_slice(&len(query)?);
    out.extend_from_slice(query.as_bytes());
    out.extend_from_slice(&len(headers_json)?);
    out.extend_from_slice(headers_json.as_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// The plaintext of an event's payload with what an input function made
/// of it. Without `forwarded` it is [`event_plaintext`] of the headers as a
/// JSON list. With it, the headers slot holds the object
/// `{"h": <headers>, "f": {"method", "path", "query", "headers", "bodyLen"}}`
/// and the forwarded body follows the original one: `bodyLen` bytes at
/// the end, binary-safe.
///
/// A header list is `[[name, value], ...]`, each value a JSON string when
/// it is UTF-8 (every record written before byte-exact headers, and nearly
/// every one since), else `{"b64": "<base64>"}` (DESIGN §8): so records of
/// earlier versions open unchanged, and no version tag is needed.
pub(crate) fn event_plaintext_with(
    query: &str,
    headers: &[(String, Vec<u8>)],
    forwarded: Option<&model::Forwarded>,
    body: &[u8],
) -> Result<Vec<u8>> {
    let encode = |e: serde_json::Error| Error::Unavailable(format!("headers: {e}"));
    let Some(f) = forwarded else {
        let headers = serde_json::to_string(&HeaderList(headers)).map_err(encode)?;
        return event_plaintext(query, &headers, body);
    };
    let slot = SlotOut {
        h: HeaderList(headers),
        f: ForwardedMetaOut {
            method: &f.method,
            path: &f.path,
            query: &f.query,
            headers: HeaderList(&f.headers),
            body_len: f.body.len(),
        },
    };
    let mut plain = event_plaintext(query, &serde_json::to_string(&slot).map_err(encode)?, body)?;
    plain.extend_from_slice(&f.body);
    Ok(plain)
}

#[derive(serde::Serialize)]
struct SlotOut<'a> {
    h: HeaderList<'a>,
    f: ForwardedMetaOut<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ForwardedMetaOut<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: HeaderList<'a>,
    body_len: usize,
}

/// Headers as stored: see [`event_plaintext_with`].
struct HeaderList<'a>(&'a [(String, Vec<u8>)]);

impl serde::Serialize for HeaderList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            match std::str::from_utf8(value) {
                Ok(text) => seq.serialize_element(&(name, text))?,
                Err(_) => seq.serialize_element(&(name, B64 { b64: b64(value) }))?,
            }
        }
        seq.end()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct B64<T> {
    b64: T,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One stored header value, either form.
struct StoredValue(Vec<u8>);

impl<'de> serde::Deserialize<'de> for StoredValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StoredValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or {\"b64\": string}")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<StoredValue, E> {
                Ok(StoredValue(v.as_bytes().to_vec()))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<StoredValue, E> {
                Ok(StoredValue(v.into_bytes()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<StoredValue, A::Error> {
                use base64::Engine;
                let B64 { b64 } = <B64<String> as serde::Deserialize>::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(StoredValue)
                    .map_err(|_| serde::de::Error::custom("header value: bad base64"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn header_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<(String, Vec<u8>)>, D::Error> {
    let pairs = <Vec<(String, StoredValue)> as serde::Deserialize>::deserialize(d)?;
    Ok(pairs.into_iter().map(|(n, v)| (n, v.0)).collect())
}

#[derive(serde::Deserialize)]
struct HeadersIn(#[serde(deserialize_with = "header_list")] Vec<(String, Vec<u8>)>);

#[derive(serde::Deserialize)]
struct Slot {
    #[serde(deserialize_with = "header_list")]
    h: Vec<(String, Vec<u8>)>,
    f: ForwardedMeta,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForwardedMeta {
    method: String,
    path: String,
    query: String,
    #[serde(deserialize_with = "header_list")]
    headers: Vec<(String, Vec<u8>)>,
    body_len: usize,
}

/// Seals an event's payload plaintext; returns the sealed bytes and the key
/// that sealed them.
pub(crate) fn seal_event(
    keys: &Keyring,
    event_id: &str,
    plaintext: &[u8],
) -> Result<(Vec<u8>, KeyId)> {
    let sealed = keys
        .seal(&event_aad(event_id), plaintext)
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok((sealed, keys.active()))
}

/// An event's payload, opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EventPayload {
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) forwarded: Option<model::Forwarded>,
}

/// Why a payload could not be read: the cipher refused it, or it opened
/// into bytes of the wrong shape (which, with GCM, means a bug, not an
/// attack).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("payload layout: {0}")]
    Layout(&'static str),
}

pub(crate) fn open_event(
    keys: &Keyring,
    event_id: &str,
    sealed: &[u8],
) -> Result<EventPayload, PayloadError> {
    let plain = keys.open(&event_aad(event_id), sealed)?;
    let mut rest = plain.as_slice();
    let query = take_str(&mut rest)?;
    let headers_json = take_str(&mut rest)?;
    if !headers_json.starts_with('{') {
        let HeadersIn(headers) = serde_json::from_str(&headers_json)
            .map_err(|_| PayloadError::Layout("headers are not a JSON list of pairs"))?;
        return Ok(EventPayload {
            query,
            headers,
            body: rest.to_vec(),
            forwarded: None,
        });
    }
    let slot: Slot = serde_json::from_str(&headers_json)
        .map_err(|_| PayloadError::Layout("headers and forwarded request malformed"))?;
    let at = rest
        .len()
        .checked_sub(slot.f.body_len)
        .ok_or(PayloadError::Layout("forwarded body truncated"))?;
    let (body, forwarded_body) = rest.split_at(at);
    Ok(EventPayload {
        query,
        headers: slot.h,
        body: body.to_vec(),
        forwarded: Some(model::Forwarded {
            method: slot.f.method,
            path: slot.f.path,
            query: slot.f.query,
            headers: slot.f.headers,
            body: forwarded_body.to_vec(),
        }),
    })
}

fn take_str(rest: &mut &[u8]) -> Result<String, PayloadError> {
    let short = PayloadError::Layout("truncated");
    let (len, tail) = rest.split_first_chunk::<4>().ok_or(short)?;
    let len = u32::from_le_bytes(*len) as usize;
    if tail.len() < len {
        return Err(PayloadError::Layout("truncated"));
    }
    let (text, tail) = tail.split_at(len);
    *rest = tail;
    String::from_utf8(text.to_vec()).map_err(|_| PayloadError::Layout("text is not UTF-8"))
}

/// Seals an input's secrets (already a JSON list).
pub(crate) fn seal_secrets(
    keys: &Keyring,
    input_id: &str,
    secrets_json: &str,
) -> Result<(Vec<u8>, KeyId)> {
    let sealed = keys
        .seal(&input_aad(input_id), secrets_json.as_bytes())
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok((sealed, keys.active()))
}

/// Opens an input's secrets. A failure is `Corrupt`: an input whose secrets
/// cannot be read cannot verify anything, and must not be served as if it
/// had none.
pub(crate) fn open_secrets(keys: &Keyring, input_id: &str, sealed: &[u8]) -> Result<Vec<String>> {
    let plain = keys
        .open(&input_aad(input_id), sealed)
        .map_err(|e| Error::Corrupt(format!("secrets of input {input_id}: {e}")))?;
    serde_json::from_slice(&plain)
        .map_err(|_| Error::Corrupt(format!("secrets of input {input_id}: not a JSON list")))
}

/// Re-seals a record under the active key: `Ok(None)` if it already is.
pub(crate) fn reseal(
    keys: &Keyring,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, OpenError> {
    if crypto::key_id_of(sealed)? == keys.active() {
        return Ok(None);
    }
    let plain = keys.open(aad, sealed)?;
    // Only a > 64 GiB plaintext fails to seal, and this one just opened.
    keys.seal(aad, &plain)
        .map(Some)
        .map_err(|_| OpenError::Malformed)
}

/// The associated data of a table's records, for [`reseal`].
pub(crate) fn aad_of(table: Table, id: &str) -> Vec<u8> {
    match table {
        Table::Events => event_aad(id),
        Table::Inputs => input_aad(id),
        Table::Buckets => bucket_aad(id),
        Table::Functions => function_aad(id),
        Table::Tunnels => tunnel_aad(id),
    }
}

/// The kinds of sealed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Events,
    Inputs,
    Buckets,
    /// A function's config.
    Functions,
    /// A tunnel's auth settings.
    Tunnels,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::Key;

    #[test]
    fn event_payloads_round_trip_and_stay_bound_to_their_id() {
        let keys = Keyring::new(&[Key::generate()]).unwrap();
        let headers = vec![
            ("x-a".to_owned(), b"1".to_vec()),
            ("x-raw".to_owned(), b"\xff\xfe".to_vec()),
        ];
        let plain = event_plaintext_with("a=1&b=2", &headers, None, b"\x00\xffbody").unwrap();
        let (sealed, key) = seal_event(&keys, "evt_1", &plain).unwrap();
        assert_eq!(key, keys.active());
        let open = open_event(&keys, "evt_1", &sealed).unwrap();
        assert_eq!(
            open,
            EventPayload {
                query: "a=1&b=2".into(),
                headers,
                body: b"\x00\xffbody".to_vec(),
                forwarded: None,
            }
        );
        assert!(matches!(
            open_event(&keys, "evt_2", &sealed),
            Err(PayloadError::Open(OpenError::Tampered))
        ));
        let (secrets, _) = seal_secrets(&keys, "evt_1", "[]").unwrap();
        assert!(open_event(&keys, "evt_1", &secrets).is_err());
    }

    #[test]
    fn a_forwarded_request_rides_with_the_payload_byte_exact() {
        let keys = Keyring::new(&[Key::generate()]).unwrap();
        let headers = vec![("x-a".to_owned(), b"1\xff".to_vec())];
        let forwarded = model::Forwarded {
            method: "PUT".into(),
            path: "/p".into(),
            query: "q=1".into(),
            headers: vec![
                ("x-b".into(), b"2".to_vec()),
                ("x-c".into(), b"\xfe".to_vec()),
            ],
            body: b"\x00{changed}\xff".to_vec(),
        };
        for original in [&b""[..], b"\x00\xffbody"] {
            let plain = event_plaintext_with("a=1", &headers, Some(&forwarded), original).unwrap();
            let (sealed, _) = seal_event(&keys, "evt_1", &plain).unwrap();
            let open = open_event(&keys, "evt_1", &sealed).unwrap();
            assert_eq!(open.body, original);
            assert_eq!(open.headers, headers);
            assert_eq!(open.forwarded.as_ref(), Some(&forwarded));
        }
        let plain = event_plaintext_with("", &headers, None, b"x").unwrap();
        let (sealed, _) = seal_event(&keys, "evt_1", &plain).unwrap();
        assert_eq!(open_event(&keys, "evt_1", &sealed).unwrap().forwarded, None);
    }

    /// Records written before header values were bytes (values as JSON
    /// strings, in both layouts) open as they did.
    #[test]
    fn records_of_earlier_versions_still_open() {
        let keys = Keyring::new(&[Key::generate()]).unwrap();
        let plain = event_plaintext("q=1", r#"[["x-a","1"],["x-a","2 é"]]"#, b"body").unwrap();
        let (sealed, _) = seal_event(&keys, "evt_1", &plain).unwrap();
        let open = open_event(&keys, "evt_1", &sealed).unwrap();
        assert_eq!(
            open.headers,
            vec![
                ("x-a".to_owned(), b"1".to_vec()),
                ("x-a".to_owned(), "2 é".as_bytes().to_vec())
            ]
        );
        assert_eq!(
            (open.query.as_str(), open.body.as_slice()),
            ("q=1", &b"body"[..])
        );
        let slot = r#"{"h":[["x-a","1"]],"f":{"method":"PUT","path":"/p","query":"","headers":[["x-b","2"]],"bodyLen":3}}"#;
        let mut plain = event_plaintext("", slot, b"orig").unwrap();
        plain.extend_from_slice(b"new");
        let (sealed, _) = seal_event(&keys, "evt_2", &plain).unwrap();
        let open = open_event(&keys, "evt_2", &sealed).unwrap();
        assert_eq!(open.headers, vec![("x-a".to_owned(), b"1".to_vec())]);
        assert_eq!(open.body, b"orig");
        let f = open.forwarded.unwrap();
        assert_eq!(
            (f.headers, f.body),
            (vec![("x-b".to_owned(), b"2".to_vec())], b"new".to_vec())
        );
    }

    #[test]
    fn a_value_that_is_not_utf8_is_stored_as_base64() {
        let headers = vec![("x-raw".to_owned(), b"\xff\xfe".to_vec())];
        let plain = event_plaintext_with("", &headers, None, b"").unwrap();
        let text = String::from_utf8_lossy(&plain);
        assert!(text.contains(r#"[["x-raw",{"b64":"//4="}]]"#), "{text}");
    }

    #[test]
    fn reseal_moves_old_records_to_the_active_key_only() {
        let (old, new) = (Key::generate(), Key::generate());
        let before = Keyring::new(std::slice::from_ref(&old)).unwrap();
        let after = Keyring::new(&[new.clone(), old]).unwrap();
        let aad = aad_of(Table::Inputs, "in1");
        let sealed = before.seal(&aad, b"[\"s\"]").unwrap();
        let moved = reseal(&after, &aad, &sealed).unwrap().unwrap();
        assert_eq!(crypto::key_id_of(&moved), Ok(new.id()));
        assert_eq!(reseal(&after, &aad, &moved), Ok(None));
        assert_eq!(open_secrets(&after, "in1", &moved).unwrap(), vec!["s"]);
    }
}
