//! Event filters on `GET /v1/events` and the bulk resend `POST
//! /v1/events/resend` (issue 17, DESIGN §11): each filter, alone and
//! combined, answers what a client-side filter of the whole log answers;
//! paging through a filter meets every match once; bad filters are 400
//! naming the field; a scan stops at its bound (events, body bytes) and
//! continues from `next`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::config::ScanBound;
use testkit::{Destination, Relay};

use super::SECRET;

const PATIENCE: Duration = Duration::from_secs(30);

/// A page of `GET /v1/events?<query>` as (event ids, next).
async fn page(relay: &Relay, query: &str) -> (Vec<String>, Value) {
    let v = relay
        .admin(
            Method::GET,
            &format!("/v1/events?{query}"),
            None,
            StatusCode::OK,
        )
        .await;
    let ids = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, v["next"].clone())
}

/// The ids of `events` for which `keep` holds.
fn ids_where(events: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    events
        .iter()
        .filter(|e| keep(e))
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn states(relay: &Relay, id: &str) -> Vec<(String, usize)> {
    let v = relay
        .admin(
            Method::GET,
            &format!("/v1/events/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let attempts = d["attempts"].as_array().map_or(0, Vec::len);
            (d["state"].as_str().unwrap().to_owned(), attempts)
        })
        .collect()
}

/// Bucket `gh` (a GitHub input, a public output to a live destination) and
/// bucket `plain` (a plain input, a public output to a closed port, one
/// attempt): events `push` "Hello world", `pull_request` "nothing", and
/// plain "hello again", "bye"; waits until all four settled.
async fn four_events(relay: &Relay, destination: &Destination) -> (Vec<Value>, Value) {
    let gh = super::github_input(relay, json!({"name": "gh"})).await;
    let plain_bucket = relay.create_bucket(json!({"name": "plain"})).await;
    let plain = relay
        .create_input(plain_bucket["id"].as_str().unwrap(), json!({}))
        .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for (bucket, url) in [
        ("gh", destination.url.clone()),
        ("plain", format!("http://127.0.0.1:{closed}/")),
    ] {
        relay
            .admin(
                Method::POST,
                &format!("/v1/buckets/{bucket}/outputs"),
                Some(json!({"url": url, "internal": false, "retry": {"maxAttempts": 1}})),
                StatusCode::CREATED,
            )
            .await;
    }
    for (body, event) in [
        (&br#"{"greeting":"Hello world"}"#[..], "push"),
        (&br#"{"x":"nothing"}"#[..], "pull_request"),
    ] {
        let mut headers = testkit::github_headers(SECRET, body, event);
        headers.push(("content-type".into(), "application/json".into()));
        let (status, _) =
            testkit::post(&relay.http, gh["url"].as_str().unwrap(), &headers, body).await;
        assert_eq!(status, StatusCode::OK);
        next_millisecond(relay).await;
    }
    for body in [&b"hello again"[..], b"bye"] {
        let (status, _) =
            testkit::post(&relay.http, plain["url"].as_str().unwrap(), &[], body).await;
        assert_eq!(status, StatusCode::OK);
        next_millisecond(relay).await;
    }
    let events = relay.events().await;
    assert_eq!(events.len(), 4);
    testkit::wait_until(PATIENCE, "every delivery settled", || async {
        let mut settled = 0;
        for e in &events {
            let s = states(relay, e["id"].as_str().unwrap()).await;
            settled += usize::from(
                s.iter()
                    .all(|(state, _)| state == "delivered" || state == "failed")
                    && !s.is_empty(),
            );
        }
        settled == 4
    })
    .await;
    (events, gh)
}

/// Waits until the clock has passed the newest event's `receivedAt`, so
/// that the next event is received in a later millisecond and a time range
/// can tell the two apart (an append can take well under a millisecond).
async fn next_millisecond(relay: &Relay) {
    let newest = relay
        .events()
        .await
        .iter()
        .filter_map(|e| e["receivedAt"].as_i64())
        .max()
        .unwrap_or(0);
    testkit::wait_until(PATIENCE, "the clock passed the newest event", || async {
        store::clock::now_ms() > newest
    })
    .await;
}

fn relay_reaching_loopback() -> testkit::RelayBuilder {
    Relay::builder().config(|c| c.allow_private_destinations = true)
}

#[tokio::test]
async fn each_filter_answers_what_a_filter_of_the_whole_log_answers() {
    let relay = relay_reaching_loopback().spawn().await;
    let destination = Destination::spawn().await;
    let (events, gh) = four_events(&relay, &destination).await;
    let gh_input = gh["id"].as_str().unwrap();
    let gh_bucket = gh["bucket"].as_str().unwrap();
    let body = |e: &Value| e["body"].as_str().unwrap_or_default().to_lowercase();
    let t1 = events[1]["receivedAt"].as_i64().unwrap();
    let t2 = events[2]["receivedAt"].as_i64().unwrap();

    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("input={gh_input}"),
            ids_where(&events, |e| e["input"] == gh_input),
        ),
        (
            "eventType=push".into(),
            ids_where(&events, |e| e["eventType"] == "push"),
        ),
        (
            "search=HELLO".into(),
            ids_where(&events, |e| body(e).contains("hello")),
        ),
        (
            "search=hello&bucket=plain".into(),
            ids_where(&events, |e| {
                body(e).contains("hello") && e["bucket"] != gh_bucket
            }),
        ),
        (
            format!("from={t1}&to={t2}"),
            ids_where(&events, |e| {
                (t1..=t2).contains(&e["receivedAt"].as_i64().unwrap())
            }),
        ),
        (
            "status=failed".into(),
            ids_where(&events, |e| e["bucket"] != gh_bucket),
        ),
        (
            "status=delivered".into(),
            ids_where(&events, |e| e["bucket"] == gh_bucket),
        ),
        ("status=pending".into(), Vec::new()),
        (
            "status=failed&search=bye".into(),
            vec![events[3]["id"].as_str().unwrap().into()],
        ),
        ("eventType=push&bucket=plain".into(), Vec::new()),
    ];
    let sizes: Vec<usize> = cases.iter().map(|(_, e)| e.len()).collect();
    assert_eq!(
        sizes,
        [2, 1, 2, 1, 2, 2, 2, 0, 1, 0],
        "the cases tell events apart"
    );
    for (query, mut expected) in cases {
        let (ids, _) = page(&relay, &query).await;
        assert_eq!(ids, expected, "{query}");
        // Newest first: the same matches, reversed.
        let (ids, _) = page(&relay, &format!("order=desc&{query}")).await;
        expected.reverse();
        assert_eq!(ids, expected, "order=desc&{query}");
    }

    // Newest first, a page at a time with `before`: each event once.
    let mut newest_first = Vec::new();
    let mut query = "order=desc&limit=3".to_owned();
    for _ in 0..3 {
        let (ids, next) = page(&relay, &query).await;
        newest_first.extend(ids);
        query = format!("order=desc&limit=3&before={}", next.as_str().unwrap());
    }
    let mut all = ids_where(&events, |_| true);
    all.reverse();
    assert_eq!(newest_first, all);
    let (ids, next) = page(&relay, &query).await;
    assert!(ids.is_empty());
    assert_eq!(next, events[0]["id"], "nothing examined: the cursor sent");

    // Paging through a filter meets each match once, then nothing.
    let (first, next) = page(&relay, "search=hello&limit=1").await;
    assert_eq!(first, vec![events[0]["id"].as_str().unwrap()]);
    let (second, next) = page(
        &relay,
        &format!("search=hello&limit=1&after={}", next.as_str().unwrap()),
    )
    .await;
    assert_eq!(second, vec![events[2]["id"].as_str().unwrap()]);
    let (third, last) = page(
        &relay,
        &format!("search=hello&limit=1&after={}", next.as_str().unwrap()),
    )
    .await;
    assert!(third.is_empty());
    assert_eq!(last, events[3]["id"], "next is the last event examined");

    for (query, field) in [
        ("input=not-a-uuid", "input"),
        ("status=lost", "status"),
        ("from=5&to=1", "to"),
        ("colour=red", "colour"),
        ("order=sideways", "order"),
        ("before=evt_01JAR0000000000000000000000", "before"),
        ("order=desc&after=evt_01JAR0000000000000000000000", "after"),
        ("order=desc&wait=1", "wait"),
        ("order=desc&before=nope", "before"),
        (&format!("search={}", "a".repeat(257)), "search"),
    ] {
        let (status, body) = relay
            .call(
                Method::GET,
                &format!("/v1/events?{query}"),
                &relay.admin,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn a_bulk_resend_sends_again_what_its_filter_matches() {
    let relay = relay_reaching_loopback().spawn().await;
    let destination = Destination::spawn().await;
    let (events, _) = four_events(&relay, &destination).await;
    let resend = |body: Value| {
        let relay = &relay;
        async move {
            relay
                .admin(
                    Method::POST,
                    "/v1/events/resend",
                    Some(body),
                    StatusCode::ACCEPTED,
                )
                .await
        }
    };
    assert_eq!(
        resend(json!({"status": "failed"})).await,
        json!({"resent": 2, "next": null})
    );
    for e in &events[2..] {
        let id = e["id"].as_str().unwrap();
        testkit::wait_until(PATIENCE, "the failed event tried again", || async {
            states(&relay, id).await == [("failed".to_owned(), 2)]
        })
        .await;
    }
    assert_eq!(
        resend(json!({"bucket": "gh", "search": "hello"})).await,
        json!({"resent": 1, "next": null})
    );
    destination.wait_for(3, PATIENCE).await;
    assert_eq!(
        states(&relay, events[1]["id"].as_str().unwrap()).await,
        [("delivered".to_owned(), 1)]
    );
    // Nothing matches: nothing is sent.
    assert_eq!(
        resend(json!({"eventType": "nope"})).await,
        json!({"resent": 0, "next": null})
    );
    let (status, body) = relay
        .call(
            Method::POST,
            "/v1/events/resend",
            &relay.admin,
            Some(json!({"bucket": "nope"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

/// Four plain events (bodies of 8 bytes) with a delivery each that fails
/// at once, on a relay whose scans stop at `bound`.
async fn bounded(bound: ScanBound) -> (Relay, Vec<String>) {
    let relay = relay_reaching_loopback()
        .config(move |c| c.event_scan = bound)
        .spawn()
        .await;
    let (input, path) = super::plain_input(&relay).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{}/outputs", input["bucket"].as_str().unwrap()),
            Some(json!({"url": format!("http://127.0.0.1:{closed}/"), "internal": false, "retry": {"maxAttempts": 1}})),
            StatusCode::CREATED,
        )
        .await;
    for body in ["hello 01", "other 02", "other 03", "hello 04"] {
        let url = format!("{}{path}", relay.url);
        testkit::post(&relay.http, &url, &[], body.as_bytes()).await;
    }
    // Page by page: the bound holds for plain reads too.
    let mut ids = Vec::new();
    let mut query = "limit=500".to_owned();
    for _ in 0..4 {
        let (more, next) = page(&relay, &query).await;
        ids.extend(more);
        query = format!("after={}", next.as_str().unwrap_or_default());
    }
    assert_eq!(ids.len(), 4);
    for id in &ids {
        testkit::wait_until(PATIENCE, "the delivery failed", || async {
            states(&relay, id).await == [("failed".to_owned(), 1)]
        })
        .await;
    }
    (relay, ids)
}

#[tokio::test]
async fn a_scan_stops_at_its_bound_and_continues_from_next() {
    // Two events per scan.
    let (relay, ids) = bounded(ScanBound {
        events: 2,
        body_bytes: u64::MAX,
    })
    .await;
    let (found, next) = page(&relay, "search=hello 04").await;
    assert!(found.is_empty());
    assert_eq!(next, ids[1], "stopped after two events");
    let (found, _) = page(&relay, &format!("search=hello 04&after={}", ids[1])).await;
    assert_eq!(found, vec![ids[3].clone()]);
    // Newest first, the bound holds the same way.
    let (found, next) = page(&relay, "order=desc&search=hello 01").await;
    assert!(found.is_empty());
    assert_eq!(next, ids[2], "stopped after two events, newest first");
    let (found, _) = page(
        &relay,
        &format!("order=desc&search=hello 01&before={}", ids[2]),
    )
    .await;
    assert_eq!(found, vec![ids[0].clone()]);
    // The bound holds for unfiltered reads too (the default, 5,000 events,
    // is above the largest page, 500).
    assert_eq!(page(&relay, "limit=3").await.0.len(), 2);
    let mut resent = Vec::new();
    let mut after = Value::Null;
    for _ in 0..4 {
        let mut body = json!({"search": "HELLO"});
        if let Some(a) = after.as_str() {
            body["after"] = json!(a);
        }
        let v = relay
            .admin(
                Method::POST,
                "/v1/events/resend",
                Some(body),
                StatusCode::ACCEPTED,
            )
            .await;
        resent.push(v["resent"].as_u64().unwrap());
        after = v["next"].clone();
        if after.is_null() {
            break;
        }
    }
    assert_eq!(
        resent,
        [1, 1, 0],
        "two calls bounded, the last reaches the end"
    );

    // 10 body bytes per scan: the second 8-byte body crosses it.
    let (relay, ids) = bounded(ScanBound {
        events: 100,
        body_bytes: 10,
    })
    .await;
    let (found, next) = page(&relay, "search=hello").await;
    assert_eq!((found, next), (vec![ids[0].clone()], json!(ids[1])));
}

/// Signs in to the dashboard with the admin token: the session cookie.
async fn dashboard_cookie(relay: &Relay) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http
        .post(format!("{}/ui/signin", relay.url))
        .header("origin", &relay.url)
        .form(&[("credential", relay.admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn dashboard_page(relay: &Relay, cookie: &str, path: &str) -> String {
    let answer = relay
        .http
        .get(format!("{}{path}", relay.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.text().await.unwrap()
}

#[tokio::test]
async fn the_dashboard_follows_a_bounded_scan_to_every_match() {
    // Two events per scan: the first read of `hello` matches only the
    // first event and answers `next`; the page and the bulk count must
    // follow it to the fourth.
    let (relay, ids) = bounded(ScanBound {
        events: 2,
        body_bytes: u64::MAX,
    })
    .await;
    let cookie = dashboard_cookie(&relay).await;
    let html = dashboard_page(&relay, &cookie, "/ui/?search=hello").await;
    let shown: Vec<bool> = ids.iter().map(|id| html.contains(id.as_str())).collect();
    assert_eq!(
        shown,
        [true, false, false, true],
        "the matches, all of them"
    );
    let html = dashboard_page(&relay, &cookie, "/ui/events/resend?search=HELLO").await;
    assert!(html.contains("matches <strong>2</strong> events"), "{html}");
}
