//! Step 6 of the pipeline: the bucket's own authentication of callers
//! (`basic` or `token`, DESIGN §1, §8), compared in constant time.

use base64::Engine;
use model::BucketAuth;

use crate::error::ApiError;
use crate::secrets;

/// Checks the request's credentials against the bucket's auth.
pub(crate) fn check(
    auth: &BucketAuth,
    headers: &http::HeaderMap,
    query: &str,
) -> Result<(), ApiError> {
    let ok = match auth {
        BucketAuth::None => true,
        BucketAuth::Basic { username, password } => {
            let expected = format!("{username}:{}", password.expose());
            basic_credentials(headers).is_some_and(|given| {
                secrets::ct_eq(&secrets::digest(&given), &secrets::digest(&expected))
            })
        }
        BucketAuth::Token { token } => {
            let expected = secrets::digest(token.expose());
            let bearer = crate::auth::bearer(headers).map(str::to_owned);
            bearer
                .into_iter()
                .chain(query_token(query))
                .any(|given| secrets::ct_eq(&secrets::digest(&given), &expected))
        }
    };
    if ok {
        return Ok(());
    }
    let mut err = ApiError::unauthorized();
    err.basic_challenge = matches!(auth, BucketAuth::Basic { .. });
    Err(err)
}

fn basic_credentials(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    String::from_utf8(decoded).ok()
}

/// The `token` query parameter, decoded as a form field.
fn query_token(query: &str) -> Option<String> {
    let value = verify::form_field(query.as_bytes(), "token")?;
    String::from_utf8(value).ok()
}

/// Removes the `token` parameter, so the bucket's credential is not stored
/// or forwarded with the event.
pub(crate) fn strip_query_token(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !verify::form_field_is_named(pair.as_bytes(), "token"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Secret;

    fn headers(auth: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn basic_auth() {
        let auth = BucketAuth::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        };
        assert!(check(&auth, &headers("Basic dTpw"), "").is_ok());
        let err = check(&auth, &headers("Basic dTpx"), "").unwrap_err();
        assert!(err.basic_challenge);
        assert!(check(&auth, &http::HeaderMap::new(), "").is_err());
        assert!(check(&auth, &headers("Basic !!!"), "").is_err());
    }

    #[test]
    fn token_auth_by_header_or_query() {
        let auth = BucketAuth::Token {
            token: Secret::new("t 1"),
        };
        assert!(check(&auth, &headers("Bearer t 1"), "").is_ok());
        assert!(check(&auth, &http::HeaderMap::new(), "a=1&token=t%201").is_ok());
        assert!(check(&auth, &http::HeaderMap::new(), "token=t2").is_err());
        assert_eq!(strip_query_token("a=1&token=x&b=2"), "a=1&b=2");
        // Whatever spelling the check accepts, the stripping removes.
        assert!(check(&auth, &http::HeaderMap::new(), "%74oken=t+1").is_ok());
        assert_eq!(
            strip_query_token("a=1&%74oken=t+1&tokens=2"),
            "a=1&tokens=2"
        );
    }
}
