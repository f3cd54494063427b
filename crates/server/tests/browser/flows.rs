//! What a user does in the dashboard, end to end, and what a tenant sees
//! of another.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{wait_until, Destination, Relay};

use crate::driver::{Browser, WAIT};
use crate::{rows, session_cookie, sign_in};

/// A `tenant` token of the default tenant, as a user would make one.
async fn tenant_token(relay: &Relay) -> String {
    let made = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant"})),
            StatusCode::CREATED,
        )
        .await;
    made["token"].as_str().expect("a bearer string").to_owned()
}

/// The id at the end of the browser's current URL.
async fn last_segment(browser: &Browser) -> String {
    let url = browser.client.current_url().await.expect("a URL");
    url.path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .expect("a path")
}

/// Reloads until the event page shows `n` attempts in all.
async fn wait_for_attempts(browser: &Browser, n: usize) {
    wait_until(WAIT, &format!("{n} attempts shown"), || async {
        browser.client.refresh().await.expect("reload");
        browser.wait_for("#raw-body").await;
        rows(browser, "table.attempts").await.len() == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_holder_does_the_quick_start_in_the_browser() {
    let destination = Destination::spawn().await;
    let relay = Relay::builder()
        .config(|c| c.allow_private_destinations = true)
        .spawn()
        .await;
    let token = tenant_token(&relay).await;
    let b = Browser::start().await;

    // Sign in with the token.
    b.goto(&format!("{}/ui/", relay.url)).await;
    b.wait_for("#credential").await;
    b.screenshot("01-sign-in").await;
    b.assert_clean_console("sign-in").await;
    sign_in(&b, &relay, &token).await;
    b.screenshot("02-events-empty").await;
    b.assert_clean_console("events").await;

    // Create a bucket, a GitHub input and a public output.
    b.goto(&format!("{}/ui/buckets", relay.url)).await;
    b.fill("#b-name", "prod").await;
    b.click("form[action='/ui/buckets'] button[type=submit]")
        .await;
    b.wait_for("#new-input").await;
    let bucket = last_segment(&b).await;
    assert!(bucket.starts_with("bkt_"), "{bucket}");
    b.click("#new-input summary").await;
    b.fill("#i-name", "github").await;
    b.wait_for("#i-integration")
        .await
        .select_by_value("github")
        .await
        .expect("select");
    b.fill("#i-secrets", "It's a Secret to Everybody").await;
    b.click("#new-input button[type=submit]").await;
    let url = b.text_of("#input-url").await;
    assert!(
        url.starts_with(&format!("{}/v1/webhooks/", relay.url)),
        "{url}"
    );
    let hint = b.text_of("#setup-hint").await;
    assert!(hint.contains("Settings → Webhooks"), "{hint}");
    b.screenshot("03-input").await;
    b.assert_clean_console("input").await;

    b.goto(&format!("{}/ui/buckets/{bucket}", relay.url)).await;
    b.click("#new-output summary").await;
    b.fill("#o-url", &format!("{}/hook", destination.url)).await;
    b.click("#new-output input[name=internal]").await; // public: the relay delivers
    b.click("#new-output button[type=submit]").await;
    b.wait_for("#outputs").await;
    b.screenshot("04-bucket").await;
    b.assert_clean_console("bucket").await;

    // Watch an event arrive live.
    b.goto(&format!("{}/ui/?bucket={bucket}", relay.url)).await;
    b.wait_for("#live-state[data-state='open']").await;
    let body = "{\"zen\":\"Design for failure. ✓\",\"n\":[1, 2],\"q\":\"it's <b>\"}";
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(testkit::github_headers(
        "It's a Secret to Everybody",
        body.as_bytes(),
        "ping",
    ));
    headers.push(("x-custom".into(), "a  b; c=\"d\"".into()));
    let (status, _) = testkit::post(
        &relay.http,
        &format!("{url}/extra?a=1&b=two"),
        &headers,
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    b.wait_for("#event-rows tr.fresh a").await;
    b.screenshot("05-events-live").await;
    b.assert_clean_console("live tail").await;

    // Open it: every header, the raw bytes, verified.
    b.click("#event-rows tr.fresh a").await;
    let raw = b.text_of("#raw-body").await;
    assert_eq!(raw, body);
    let id = last_segment(&b).await;
    let stored = relay
        .admin(
            Method::GET,
            &format!("/v1/events/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    let expected: BTreeSet<(String, String)> = stored["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let shown: BTreeSet<(String, String)> = rows(&b, "#headers")
        .await
        .into_iter()
        .map(|cells| (cells[0].clone(), cells[1].clone()))
        .collect();
    assert_eq!(shown, expected, "every header, exactly");
    assert!(expected
        .iter()
        .any(|(k, v)| k == "x-custom" && v == "a  b; c=\"d\""));
    assert_eq!(b.text_of("#query").await, "a=1&b=two");
    assert!(b.text_of("#verified").await.contains("yes"));
    let cookie = session_cookie(&b).await;
    let download = relay
        .http
        .get(format!("{}/ui/events/{id}/raw", relay.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.bytes().await.expect("bytes").as_ref(),
        body.as_bytes()
    );
    assert!(b.text_of("#curl").await.contains("x-custom: a  b"));

    // Delivered once; resend it and see the new attempt.
    destination.wait_for(1, WAIT).await;
    wait_for_attempts(&b, 1).await;
    b.screenshot("06-event").await;
    b.assert_clean_console("event").await;
    b.click("#resend").await;
    b.wait_for(".flash.ok").await;
    destination.wait_for(2, WAIT).await;
    wait_for_attempts(&b, 2).await;

    // Bulk: everything the bucket filter matches, counted and confirmed.
    b.goto(&format!("{}/ui/events/resend?bucket={bucket}", relay.url))
        .await;
    let count = b.text_of("#bulk-count").await;
    assert!(count.contains("matches 1 event."), "{count}");
    b.screenshot("07-bulk-confirm").await;
    b.click("#bulk-confirm").await;
    let done = b.text_of(".flash.ok").await;
    assert!(done.contains("Resent 1 events"), "{done}");
    destination.wait_for(3, WAIT).await;

    // Filters through the form: type, body text and delivery state keep
    // the event; a body text it lacks empties the page.
    b.goto(&format!("{}/ui/?bucket={bucket}", relay.url)).await;
    b.fill("#f-type", "ping").await;
    b.fill("#f-search", "DESIGN FOR").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for(&format!("#event-rows a[href='/ui/events/{id}']"))
        .await;
    b.screenshot("08-filtered").await;
    b.assert_clean_console("filtered").await;
    b.goto(&format!(
        "{}/ui/?bucket={bucket}&status=delivered&type=ping",
        relay.url
    ))
    .await;
    b.wait_for(&format!("#event-rows a[href='/ui/events/{id}']"))
        .await;
    b.goto(&format!(
        "{}/ui/?bucket={bucket}&search=not-in-any-body",
        relay.url
    ))
    .await;
    b.wait_for("#no-events").await;
    b.goto(&format!(
        "{}/ui/events/resend?bucket={bucket}&type=push",
        relay.url
    ))
    .await;
    let count = b.text_of("#bulk-count").await;
    assert!(count.contains("matches 0 events."), "{count}");

    for (page, name) in [
        ("tokens", "09-tokens"),
        ("agents", "10-agents"),
        ("buckets", "11-buckets"),
    ] {
        b.goto(&format!("{}/ui/{page}", relay.url)).await;
        b.wait_for("h1").await;
        b.screenshot(name).await;
        b.assert_clean_console(page).await;
    }

    // Sign out: the cookie opens nothing any more.
    b.click("form[action='/ui/signout'] button").await;
    b.wait_for("#credential").await;
    let after = relay
        .http
        .get(format!("{}/ui/", relay.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("a request");
    assert_eq!(after.url().path(), "/ui/signin", "redirected to sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_sees_nothing_of_another_tenant() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "secret-stuff"})).await;
    let bucket_id = bucket["id"].as_str().expect("id").to_owned();
    let input = relay.create_input(&bucket_id, json!({})).await;
    let input_id = input["id"].as_str().expect("id").to_owned();
    let (status, _) = testkit::post(
        &relay.http,
        input["url"].as_str().expect("url"),
        &[],
        b"hidden",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let event = relay.events().await.pop().expect("one event");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let function = relay
        .admin(
            Method::POST,
            "/v1/functions",
            Some(json!({"name": "secret-fn", "source": "r:StopForwarding()"})),
            StatusCode::CREATED,
        )
        .await;
    let function_id = function["id"].as_str().expect("id").to_owned();
    let tunnel = relay
        .admin(
            Method::POST,
            "/v1/tunnels",
            Some(json!({"name": "secret-tunnel"})),
            StatusCode::CREATED,
        )
        .await;
    let tunnel_id = tunnel["id"].as_str().expect("id").to_owned();

    let made = relay
        .admin(
            Method::POST,
            "/api/tenants",
            Some(json!({"label": "Acme"})),
            StatusCode::CREATED,
        )
        .await;
    let acme = made["tenant"]["id"]
        .as_str()
        .expect("a tenant id")
        .to_owned();
    let answer = relay
        .http
        .post(format!("{}/v1/tokens", relay.url))
        .bearer_auth(&relay.admin)
        .header("x-hookrelay-tenant", &acme)
        .json(&json!({"scope": "tenant"}))
        .send()
        .await
        .expect("token");
    assert_eq!(answer.status(), StatusCode::CREATED);
    let token: Value = answer.json().await.expect("json");

    let b = Browser::start().await;
    sign_in(&b, &relay, token["token"].as_str().expect("token")).await;
    b.wait_for("#no-events").await;
    b.screenshot("11-other-tenant-events").await;
    for path in [
        format!("/ui/events/{event_id}"),
        format!("/ui/events/{event_id}/raw"),
        format!("/ui/buckets/{bucket_id}"),
        format!("/ui/inputs/{input_id}"),
        format!("/ui/?bucket={bucket_id}"),
        format!("/ui/functions/{function_id}"),
        format!("/ui/tunnels/{tunnel_id}"),
    ] {
        b.goto(&format!("{}{path}", relay.url)).await;
        let heading = b.heading().await;
        assert!(heading.starts_with("404"), "{path} showed {heading}");
    }
    for (page, name) in [
        ("buckets", "secret-stuff"),
        ("functions", "secret-fn"),
        ("tunnels", "secret-tunnel"),
    ] {
        b.goto(&format!("{}/ui/{page}", relay.url)).await;
        b.wait_for("h1").await;
        let source = b.client.source().await.expect("source");
        assert!(!source.contains(name), "{page} shows {name}");
    }
}
