//! The admin API's JSON bodies (bucket, input, output and token create and
//! patch bodies, tenant provisioning and secrets), through the server's own
//! parsing and checks (`server::fuzzing`), as the routes run them.
//!
//! Input: one byte choosing the body, the body, a NUL, a PATCH body.
//! Asserts: every refusal is 400 `invalid_request`; an accepted body
//! patched with `{}` is unchanged (PATCH keeps every field it does not name);
//! a patch that is accepted keeps the object's id and is itself stable
//! under `{}`; what the API shows does not depend on the secrets; and no
//! refusal's message quotes a secret from the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use server::fuzzing::{create, AdminBody, Object, Refused};

const KINDS: [AdminBody; 8] = [
    AdminBody::Bucket,
    AdminBody::Input,
    AdminBody::Output,
    AdminBody::Token,
    AdminBody::TokenPatch,
    AdminBody::Tenant,
    AdminBody::TenantPatch,
    AdminBody::TenantSecrets,
];

fn refusal_is_invalid_request(r: &Refused) {
    assert_eq!((r.status, r.code), (400, "invalid_request"), "{r:?}");
}

fn id_of(o: &Object) -> Value {
    o.view()["id"].clone()
}

/// The secret strings a raw body carries where the API expects secrets.
fn secrets_in(kind: AdminBody, body: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(Value::String(s)) = v {
            found.push(s.clone());
        }
    };
    match kind {
        AdminBody::Bucket => {
            push(body.pointer("/auth/password"));
            push(body.pointer("/auth/token"));
        }
        AdminBody::Input => {
            if let Some(Value::Array(list)) = body.get("secrets") {
                list.iter().for_each(|v| push(Some(v)));
            }
        }
        AdminBody::TenantSecrets => {
            if let Some(Value::Object(map)) = body.get("webhookSecrets") {
                map.values().for_each(|v| push(Some(v)));
            }
        }
        _ => {}
    }
    found
}

/// `body` with every string equal to `from` replaced by `to`.
fn replace_strings(body: &mut Value, from: &str, to: &str) {
    match body {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(list) => list.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let (body, patch) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    match create(kind, body) {
        Ok(object) => {
            let same = object.patch(b"{}").expect("PATCH {} of what a create made");
            assert_eq!(same.stored(), object.stored(), "PATCH {{}} changed it");
            let other = object.with_secrets(|s| format!("{s}-other"));
            assert_eq!(other.view(), object.view(), "the view shows a secret");
            if let Object::Bucket(_) = object {
                let auth = &object.view()["auth"];
                assert!(auth.get("password").is_none() && auth.get("token").is_none());
            }
            if let Some(patch) = patch {
                match object.patch(patch) {
                    Ok(patched) => {
                        assert_eq!(id_of(&patched), id_of(&object), "a patch changed the id");
                        let again = patched.patch(b"{}").expect("PATCH {} of a patched object");
                        assert_eq!(again.stored(), patched.stored());
                    }
                    Err(r) => refusal_is_invalid_request(&r),
                }
            }
        }
        Err(refused) => {
            refusal_is_invalid_request(&refused);
            // A message that quotes a secret would quote a different one
            // for a different secret: if the message still holds the first
            // after it was replaced, the text comes from elsewhere.
            let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
                return;
            };
            for secret in secrets_in(kind, &parsed) {
                if secret.len() < 4 || !refused.message.contains(&secret) {
                    continue;
                }
                let mut changed = parsed.clone();
                let to = "Q".repeat(secret.len() + 1);
                replace_strings(&mut changed, &secret, &to);
                let bytes = serde_json::to_vec(&changed).expect("a JSON value serialises");
                if let Err(again) = create(kind, &bytes) {
                    assert!(
                        again.message.contains(&secret),
                        "the refusal quotes a secret: {}",
                        refused.message
                    );
                }
            }
        }
    }
});
