//! What the dashboard must refuse: agent tokens at sign-in, forms without
//! their CSRF token or from another origin, the cookie on the JSON API;
//! and the Content-Security-Policy on every answer.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::Relay;

use crate::driver::Browser;
use crate::{session_cookie, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forms_are_refused_and_every_page_has_a_strict_csp() {
    let relay = Relay::spawn().await;
    let b = Browser::start().await;

    // An agent token cannot sign in; the admin secret can.
    let agent = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent"})),
            StatusCode::CREATED,
        )
        .await;
    b.goto(&format!("{}/ui/signin", relay.url)).await;
    b.fill("#credential", agent["token"].as_str().expect("token"))
        .await;
    b.click("form[action='/ui/signin'] button[type=submit]")
        .await;
    let refused = b.text_of(".flash.error").await;
    assert!(refused.contains("Agent tokens cannot sign in"), "{refused}");
    sign_in(&b, &relay, &relay.admin).await;

    // A form whose CSRF token was removed is refused, in the browser...
    b.goto(&format!("{}/ui/buckets", relay.url)).await;
    b.fill("#b-name", "forged").await;
    b.client
        .execute(
            "document.querySelector(\"form[action='/ui/buckets'] input[name=csrf]\").remove()",
            vec![],
        )
        .await
        .expect("script");
    b.click("form[action='/ui/buckets'] button[type=submit]")
        .await;
    assert_eq!(b.heading().await, "Forbidden");
    b.screenshot("12-forged-form").await;

    // ...and beside it: no token, or a foreign origin, changes nothing.
    let cookie = session_cookie(&b).await;
    let page = relay
        .http
        .get(format!("{}/ui/buckets", relay.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    let post = |origin: &'static str, form: Vec<(&'static str, String)>| {
        relay
            .http
            .post(format!("{}/ui/buckets", relay.url))
            .header("cookie", &cookie)
            .header(
                "origin",
                if origin.is_empty() {
                    relay.url.clone()
                } else {
                    origin.to_owned()
                },
            )
            .form(&form)
            .send()
    };
    let no_token = post("", vec![("name", "forged".into())])
        .await
        .expect("post");
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let foreign = post(
        "http://evil.example",
        vec![("name", "forged".into()), ("csrf", csrf.clone())],
    )
    .await
    .expect("post");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let buckets = relay
        .admin(Method::GET, "/v1/buckets", None, StatusCode::OK)
        .await;
    assert_eq!(buckets["buckets"], json!([]), "nothing was created");
    let genuine = post("", vec![("name", "real".into()), ("csrf", csrf)])
        .await
        .expect("post");
    assert!(
        genuine.url().path().starts_with("/ui/buckets/bkt_"),
        "{}",
        genuine.url()
    );

    // The policy on every kind of answer, and the JSON API stays bearer-only.
    for path in [
        "/ui/",
        "/ui/signin",
        "/ui/buckets",
        "/ui/functions",
        "/ui/tunnels",
        "/ui/assets/ui.js",
        "/ui/nope",
    ] {
        let answer = relay
            .http
            .get(format!("{}{path}", relay.url))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("page");
        let csp = answer
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path} has no CSP"))
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
    }
    let api = relay
        .http
        .get(format!("{}/v1/buckets", relay.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("api");
    assert_eq!(
        api.status(),
        StatusCode::UNAUTHORIZED,
        "the API ignores the cookie"
    );
    // The refusals above are in the log as failed loads; a normal page
    // after them logs nothing.
    b.mark_console().await;
    b.goto(&format!("{}/ui/buckets", relay.url)).await;
    b.wait_for("#b-name").await;
    b.assert_clean_console("buckets").await;
}
