//! Functions and tunnels in the browser: create, edit, invoke, the request
//! log, delete; a refusal shows the API's own message.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{wait_until, Relay};

use crate::driver::{Browser, WAIT};
use crate::{rows, sign_in};

/// What the API answers `POST path` with `body` under the admin token:
/// the refusal's message.
async fn api_refusal(relay: &Relay, path: &str, body: serde_json::Value) -> String {
    let (status, answer) = relay
        .call(Method::POST, path, &relay.admin, Some(body))
        .await;
    assert!(status.is_client_error(), "{path}: {status} {answer}");
    answer["message"].as_str().expect("a message").to_owned()
}

/// A browser signed in with the admin secret on `/ui/{page}`, checked clean.
async fn admin_on(relay: &Relay, page: &str) -> Browser {
    let b = Browser::start().await;
    sign_in(&b, relay, &relay.admin).await;
    b.goto(&format!("{}/ui/{page}", relay.url)).await;
    b.wait_for("h1").await;
    b.assert_clean_console(page).await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_is_written_invoked_edited_and_deleted_in_the_browser() {
    let relay = Relay::spawn().await;
    let b = admin_on(&relay, "functions").await;
    b.fill("#fn-name", "greeter").await;
    let source = "local greeting = cfg.get(\"GREETING\")\n\
                  log(\"saw \" .. r.RequestHeader[\"X-Test\"])\n\
                  r:SetRequestHeader(\"x-greeted\", \"yes\")\n\
                  r:SetResponseStatusCode(201)\n\
                  r:SetResponseBody(greeting .. \", \" .. r.RequestBody)\n";
    b.fill("#fn-source", source).await;
    b.fill("#fn-config", "GREETING=hello").await;
    b.click("form[action='/ui/functions'] button[type=submit]")
        .await;
    b.wait_for("#invoke").await;
    assert!(b.heading().await.contains("greeter"));
    let listed = relay
        .admin(Method::GET, "/v1/functions", None, StatusCode::OK)
        .await;
    let function = &listed["functions"][0];
    assert_eq!(
        function["source"],
        source.trim_end(),
        "the source as typed, LF, trimmed"
    );
    assert_eq!(function["configKeys"], json!(["GREETING"]));
    let id = function["id"].as_str().expect("id").to_owned();

    // Invoke on a sample: the answer, the changed request, the logs.
    b.fill("#inv-path", "/hook").await;
    b.fill("#inv-headers", "X-Test: 42").await;
    b.fill("#inv-body", "world").await;
    b.click("#invoke button[type=submit]").await;
    assert_eq!(b.text_of("#invoke-status").await, "Status 201");
    assert_eq!(b.text_of("#invoke-response").await, "hello, world");
    assert_eq!(b.text_of("#invoke-error").await, "none");
    let request = b.text_of("#invoke-request").await;
    assert!(request.starts_with("POST /hook\n"), "{request}");
    assert!(request.contains("x-greeted: yes"), "{request}");
    assert!(request.contains("x-test: 42"), "{request}");
    assert!(b.text_of("#invoke-logs").await.contains("saw 42"));
    assert_eq!(
        b.wait_for("#inv-body")
            .await
            .prop("value")
            .await
            .expect("value"),
        Some("world".into()),
        "the sample stays in the form"
    );
    b.screenshot("12-function-invoked").await;
    b.assert_clean_console("function invoked").await;

    // As an output function, the response setter fails: the error shows.
    b.click("#invoke input[name=output]").await;
    b.click("#invoke button[type=submit]").await;
    // The previous result stays on screen until the new page loads.
    wait_until(WAIT, "the output function's error", || async {
        b.text_of("#invoke-error")
            .await
            .contains("input functions only")
    })
    .await;

    // A source that does not compile: the API's message, as it says it.
    let bad = "r:SetResponseBody(";
    let expected = api_refusal(
        &relay,
        "/v1/functions",
        json!({"name": "other", "source": bad}),
    )
    .await;
    let edit = format!("form[action='/ui/functions/{id}']");
    b.fill(&format!("{edit} #fn-source"), bad).await;
    b.click(&format!("{edit} button[type=submit]")).await;
    assert_eq!(b.text_of(".flash.error").await, expected);
    let kept = relay
        .admin(
            Method::GET,
            &format!("/v1/functions/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        kept["source"],
        source.trim_end(),
        "a refused edit changes nothing"
    );

    // Edit: a new name; an empty config keeps the current one.
    b.fill(&format!("{edit} #fn-name"), "greeter-2").await;
    b.click(&format!("{edit} button[type=submit]")).await;
    assert_eq!(b.text_of(".flash.ok").await, "Function saved.");
    let saved = relay
        .admin(
            Method::GET,
            &format!("/v1/functions/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(saved["name"], "greeter-2");
    assert_eq!(saved["configKeys"], json!(["GREETING"]));

    // In use by an input: deleting is refused with the API's message.
    let bucket = relay.create_bucket(json!({"name": "fns"})).await;
    let input = relay
        .create_input(
            bucket["id"].as_str().expect("id"),
            json!({"functionId": id}),
        )
        .await;
    b.click(&format!(
        "form[action='/ui/functions/{id}/delete'] input[name=confirm]"
    ))
    .await;
    b.click(&format!("form[action='/ui/functions/{id}/delete'] button"))
        .await;
    let refused = b.text_of(".flash.error").await;
    assert!(refused.contains("detach it first"), "{refused}");
    relay
        .admin(
            Method::DELETE,
            &format!("/v1/inputs/{}", input["id"].as_str().expect("id")),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    b.click(&format!(
        "form[action='/ui/functions/{id}/delete'] input[name=confirm]"
    ))
    .await;
    b.click(&format!("form[action='/ui/functions/{id}/delete'] button"))
        .await;
    assert_eq!(b.text_of(".flash.ok").await, "Function deleted.");
    assert!(b
        .client
        .source()
        .await
        .expect("source")
        .contains("No function yet"));
    b.screenshot("13-functions").await;
    b.assert_clean_console("functions after delete").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_is_managed_and_its_request_log_shown_in_the_browser() {
    let relay = Relay::spawn().await;
    let b = admin_on(&relay, "tunnels").await;
    b.fill("#t-name", "myapp").await;
    b.fill("#t-host", "localhost:3000").await;
    b.click("form[action='/ui/tunnels'] button[type=submit]")
        .await;
    b.wait_for("#tunnel-urls").await;
    assert!(b.text_of("#tunnel-urls").await.contains("/t/myapp"));
    b.wait_for("#no-requests").await;
    let listed = relay
        .admin(Method::GET, "/v1/tunnels", None, StatusCode::OK)
        .await;
    let tunnel = &listed["tunnels"][0];
    assert_eq!(tunnel["hostHeader"], "localhost:3000");
    let id = tunnel["id"].as_str().expect("id").to_owned();

    // No agent serves it: each visit is a 502 the log records.
    for path in ["/t/myapp/first", "/t/myapp/second?x=1"] {
        let answer = relay
            .http
            .get(format!("{}{path}", relay.url))
            .send()
            .await
            .expect("a visit");
        assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    }
    b.client.refresh().await.expect("reload");
    b.wait_for("#requests").await;
    let log = rows(&b, "#requests").await;
    let requests: Vec<(&str, &str)> = log
        .iter()
        .map(|cells| (cells[1].as_str(), cells[2].as_str()))
        .collect();
    assert_eq!(
        requests,
        [("GET /second", "502"), ("GET /first", "502")],
        "newest first, path without its query"
    );
    b.screenshot("14-tunnel").await;
    b.assert_clean_console("tunnel").await;

    // Edit: token auth, the rewrite cleared, disabled.
    b.wait_for("#b-auth")
        .await
        .select_by_value("token")
        .await
        .expect("select");
    b.fill("#b-pass", "s3cret-token").await;
    b.fill("#t-host", "").await;
    let edit = format!("form[action='/ui/tunnels/{id}']");
    b.click(&format!("{edit} input[name=enabled]")).await;
    b.click(&format!("{edit} button[type=submit]")).await;
    assert_eq!(b.text_of(".flash.ok").await, "Tunnel saved.");
    let saved = relay
        .admin(
            Method::GET,
            &format!("/v1/tunnels/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(saved["auth"]["type"], "token");
    assert_eq!(saved["hostHeader"], serde_json::Value::Null);
    assert_eq!(saved["enabled"], false);

    // A second tunnel by the same name: the API's refusal, word for word.
    let expected = api_refusal(&relay, "/v1/tunnels", json!({"name": "myapp"})).await;
    b.goto(&format!("{}/ui/tunnels", relay.url)).await;
    b.fill("#t-name", "myapp").await;
    b.click("form[action='/ui/tunnels'] button[type=submit]")
        .await;
    assert_eq!(b.text_of(".flash.error").await, expected);

    // Delete.
    b.goto(&format!("{}/ui/tunnels/{id}", relay.url)).await;
    b.click(&format!(
        "form[action='/ui/tunnels/{id}/delete'] input[name=confirm]"
    ))
    .await;
    b.click(&format!("form[action='/ui/tunnels/{id}/delete'] button"))
        .await;
    assert_eq!(b.text_of(".flash.ok").await, "Tunnel deleted.");
    let listed = relay
        .admin(Method::GET, "/v1/tunnels", None, StatusCode::OK)
        .await;
    assert_eq!(listed["tunnels"], json!([]));
    b.screenshot("15-tunnels").await;
    b.assert_clean_console("tunnels after delete").await;
}
