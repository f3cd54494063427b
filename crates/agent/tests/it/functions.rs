//! Functions through a real agent (issue 16, DESIGN §9): an input function
//! that reshapes the request (method, path, query, headers, body) and an
//! output function that adds a header, both seen by the destination
//! behind the agent over both transports; an output function that stops
//! forwarding settles the delivery `skipped` and the agent sends nothing.

use super::*;

async fn function(relay: &Relay, source: &str) -> String {
    relay
        .admin(
            Method::POST,
            "/v1/functions",
            Some(json!({"name": "f", "source": source, "config": {"TOKEN": "t0k"}})),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The world's one input and one output, by listing them.
async fn input_and_output(w: &World) -> (String, String) {
    let buckets = w
        .relay
        .admin(Method::GET, "/v1/buckets", None, StatusCode::OK)
        .await;
    let bucket = buckets["buckets"][0]["id"].as_str().unwrap().to_owned();
    let inputs = w
        .relay
        .admin(
            Method::GET,
            &format!("/v1/buckets/{bucket}/inputs"),
            None,
            StatusCode::OK,
        )
        .await;
    let outputs = w
        .relay
        .admin(
            Method::GET,
            &format!("/v1/buckets/{bucket}/outputs"),
            None,
            StatusCode::OK,
        )
        .await;
    (
        inputs["inputs"][0]["id"].as_str().unwrap().to_owned(),
        outputs["outputs"][0]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_and_output_functions_shape_what_the_agent_delivers() {
    for transport in TRANSPORTS {
        let w = world().await;
        let (input, output) = input_and_output(&w).await;
        let shape = function(
            &w.relay,
            r#"
            local v = json.decode(r.RequestBody)
            r:SetRequestMethod("PUT")
            r:SetRequestPath("/reshaped")
            r:SetRequestRawQuery("n=" .. v.n)
            r:SetRequestBody(json.encode({text = "n is " .. v.n}))
            "#,
        )
        .await;
        let auth = function(
            &w.relay,
            r#"r:SetRequestHeader("authorization", "Bearer " .. cfg.get("TOKEN"))"#,
        )
        .await;
        for (path, id) in [
            (format!("/v1/inputs/{input}"), &shape),
            (format!("/v1/outputs/{output}"), &auth),
        ] {
            w.relay
                .admin(
                    Method::PATCH,
                    &path,
                    Some(json!({"functionId": id})),
                    StatusCode::OK,
                )
                .await;
        }
        let agent = Running::start(config(&w, transport, ""));
        agents_connected(&w.relay, 1).await;
        send(&w, br#"{"n": 7}"#).await;
        let got = w.destination.wait_for(1, PATIENCE).await;
        let r = &got[0];
        assert_eq!(r.method, "PUT", "{transport:?}");
        assert_eq!(r.target, "/hook/reshaped?n=7", "{transport:?}");
        assert_eq!(r.body.as_ref(), br#"{"text":"n is 7"}"#);
        assert_eq!(r.header("authorization"), Some("Bearer t0k"));
        all_delivered(&w.relay).await;
        let event = &w.relay.events().await[0];
        assert_eq!(event["body"], r#"{"n": 7}"#, "the original is kept");
        assert_eq!(event["forwarded"]["method"], "PUT");
        agent.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_function_that_stops_skips_the_delivery() {
    for transport in TRANSPORTS {
        let w = world().await;
        let (_, output) = input_and_output(&w).await;
        let skip = function(
            &w.relay,
            r#"if r.RequestBody == "noise" then r:StopForwarding() end"#,
        )
        .await;
        w.relay
            .admin(
                Method::PATCH,
                &format!("/v1/outputs/{output}"),
                Some(json!({"functionId": skip})),
                StatusCode::OK,
            )
            .await;
        let agent = Running::start(config(&w, transport, ""));
        agents_connected(&w.relay, 1).await;
        send(&w, b"noise").await;
        send(&w, b"signal").await;
        let got = w.destination.wait_for(1, PATIENCE).await;
        assert_eq!(bodies(&got), ["signal"], "{transport:?}");
        testkit::wait_until(PATIENCE, "the noise skipped", || async {
            let events = w.relay.events().await;
            let path = format!("/v1/events/{}", events[0]["id"].as_str().unwrap());
            let one = w
                .relay
                .admin(Method::GET, &path, None, StatusCode::OK)
                .await;
            one["deliveries"][0]["state"] == "skipped"
        })
        .await;
        assert_eq!(w.destination.received().len(), 1);
        agent.stop().await;
    }
}
