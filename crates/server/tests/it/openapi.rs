//! `GET /openapi.json` (issue 17): the document parses as OpenAPI 3.1
//! (`oas3`), describes every (method, path) the routers declare (the same
//! scan of `src/` as the security route table) and nothing else, every
//! reference in it resolves, and real answers carry exactly the fields
//! their described schemas name.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;

use super::security::routes::declared_routes;

/// Routes that are not part of the JSON API, and why.
const NOT_DESCRIBED: &[(&str, &str)] = &[("/ui", "the web dashboard's HTML pages")];

/// The methods an `ANY` route must be described under.
const ANY: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(relay: &Relay) -> (String, Value) {
    let response = relay
        .http
        .get(format!("{}/openapi.json", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).expect("the description is JSON");
    (text, value)
}

/// axum's `{*rest}` is OpenAPI's `{rest}`.
fn openapi_path(route: &str) -> String {
    route.replace("{*", "{")
}

#[tokio::test]
async fn the_description_parses_and_describes_every_routed_path() {
    let relay = Relay::spawn().await;
    let (text, raw) = document(&relay).await;
    let spec = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    spec.validate_version()
        .expect("a supported OpenAPI version");

    let mut declared = BTreeSet::new();
    for (method, route) in declared_routes() {
        if let Some((_, why)) = NOT_DESCRIBED.iter().find(|(p, _)| route.starts_with(p)) {
            println!("not described: {method} {route}: {why}");
            continue;
        }
        let path = openapi_path(&route);
        // gRPC calls are POSTs; any other `ANY` route takes every method.
        let methods: Vec<&str> = if method == "ANY" && route.starts_with("/hookrelay.v1.") {
            vec!["POST"]
        } else if method == "ANY" {
            ANY.to_vec()
        } else {
            vec![method.as_str()]
        };
        for m in methods {
            declared.insert((m.to_owned(), path.clone()));
        }
    }
    let described: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.to_string(), path))
        .collect();
    let missing: Vec<_> = declared.difference(&described).collect();
    let stale: Vec<_> = described.difference(&declared).collect();
    assert!(missing.is_empty(), "routed but not described: {missing:?}");
    assert!(stale.is_empty(), "described but not routed: {stale:?}");
    assert!(described.len() >= 50, "{described:?}");

    for (path, method, op) in spec.operations() {
        let what = format!("{method} {path}");
        assert!(op.summary.is_some(), "{what}: no summary");
        let responses = op.responses(&spec);
        assert!(!responses.is_empty(), "{what}: no answers");
        op.request_body(&spec)
            .unwrap_or_else(|e| panic!("{what}: body: {e}"));
        let params = op
            .parameters(&spec)
            .unwrap_or_else(|e| panic!("{what}: parameters: {e}"));
        // Each `{name}` of the path is a described path parameter.
        for name in path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
            assert!(
                params.iter().any(|p| p.name == name),
                "{what}: no parameter {name}"
            );
        }
    }

    // Every reference points at a schema the document holds.
    let schemas = raw["components"]["schemas"]
        .as_object()
        .expect("component schemas");
    let mut refs = Vec::new();
    collect_refs(&raw, &mut refs);
    assert!(refs.len() > 50, "{refs:?}");
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "dangling reference {r}");
    }
    // No schema describes a secret field of an answer.
    for name in [
        "BucketOut",
        "InputOut",
        "TokenOut",
        "OutputOut",
        "TunnelView",
    ] {
        let (props, _) = properties(
            &raw,
            &json!({"$ref": format!("#/components/schemas/{name}")}),
        );
        for secret in ["secrets", "secret", "password", "secretHash"] {
            assert!(!props.contains(secret), "{name} describes {secret}");
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The property names and required names of an object schema, following
/// `$ref` and `allOf` (how a flattened view is described).
fn properties(doc: &Value, schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return properties(doc, &doc["components"]["schemas"][name]);
    }
    let mut props = BTreeSet::new();
    let mut required = BTreeSet::new();
    if let Some(all) = schema["allOf"].as_array() {
        for part in all {
            let (p, r) = properties(doc, part);
            props.extend(p);
            required.extend(r);
        }
    }
    if let Some(map) = schema["properties"].as_object() {
        props.extend(map.keys().cloned());
    }
    if let Some(list) = schema["required"].as_array() {
        required.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    (props, required)
}

/// The schema of the `status` JSON answer of `method path`.
fn answer_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    &doc["paths"][path][method.to_lowercase()]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"]
}

/// `answer` has every required field of its schema and no field the schema
/// does not name.
fn conforms(doc: &Value, what: &str, schema: &Value, answer: &Value) {
    let (props, required) = properties(doc, schema);
    assert!(!props.is_empty(), "{what}: no described properties");
    let keys: BTreeSet<String> = answer
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {answer}"))
        .keys()
        .cloned()
        .collect();
    let undescribed: Vec<_> = keys.difference(&props).collect();
    let absent: Vec<_> = required.difference(&keys).collect();
    assert!(
        undescribed.is_empty(),
        "{what}: undescribed fields {undescribed:?}"
    );
    assert!(
        absent.is_empty(),
        "{what}: required fields absent {absent:?}"
    );
}

#[tokio::test]
async fn real_answers_carry_exactly_the_described_fields() {
    let (relay, input) = super::relay_with_github_input().await;
    let (_, doc) = document(&relay).await;
    let bucket = input["bucket"].as_str().unwrap().to_owned();
    let created_input = input.clone();
    let output = relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{bucket}/outputs"),
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
            StatusCode::CREATED,
        )
        .await;
    let token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "poll"})),
            StatusCode::CREATED,
        )
        .await;
    let function = relay
        .admin(
            Method::POST,
            "/v1/functions",
            Some(json!({"name": "f", "source": "r:SetResponseBody('ok')", "config": {"K": "v"}})),
            StatusCode::CREATED,
        )
        .await;
    let function_id = function["id"].as_str().unwrap().to_owned();
    let invoked = relay
        .admin(
            Method::POST,
            &format!("/v1/functions/{function_id}/invoke"),
            Some(json!({"body": "x"})),
            StatusCode::OK,
        )
        .await;
    super::post_signed(&relay, input["url"].as_str().unwrap(), br#"{"a":1}"#).await;
    let event = relay.events().await.pop().expect("the event");

    let mut answers: BTreeMap<(&str, String, u16), Value> = BTreeMap::new();
    answers.insert(
        ("POST", "/v1/buckets/{bucket}/inputs".into(), 201),
        created_input,
    );
    answers.insert(
        ("POST", "/v1/buckets/{bucket}/outputs".into(), 201),
        output.clone(),
    );
    answers.insert(("POST", "/v1/tokens".into(), 201), token.clone());
    let tunnel = relay
        .admin(
            Method::POST,
            "/v1/tunnels",
            Some(json!({"name": "described", "auth": {"type": "basic", "username": "u", "password": "p"}})),
            StatusCode::CREATED,
        )
        .await;
    answers.insert(("POST", "/v1/tunnels".into(), 201), tunnel.clone());
    let tunnel_id = tunnel["id"].as_str().unwrap();
    answers.insert(("POST", "/v1/functions".into(), 201), function);
    answers.insert(
        ("POST", "/v1/functions/{function}/invoke".into(), 200),
        invoked,
    );
    for (path, route) in [
        (format!("/v1/tunnels/{tunnel_id}"), "/v1/tunnels/{id}"),
        (
            format!("/v1/tunnels/{tunnel_id}/requests"),
            "/v1/tunnels/{id}/requests",
        ),
        ("/v1/tunnels".to_owned(), "/v1/tunnels"),
        (format!("/v1/buckets/{bucket}"), "/v1/buckets/{bucket}"),
        (
            format!("/v1/inputs/{}", input["id"].as_str().unwrap()),
            "/v1/inputs/{input}",
        ),
        (
            format!("/v1/outputs/{}", output["id"].as_str().unwrap()),
            "/v1/outputs/{output}",
        ),
        (
            format!("/v1/tokens/{}", token["key"].as_str().unwrap()),
            "/v1/tokens/{key}",
        ),
        (
            format!("/v1/events/{}", event["id"].as_str().unwrap()),
            "/v1/events/{event}",
        ),
        ("/v1/events".to_owned(), "/v1/events"),
        (
            format!("/v1/functions/{function_id}"),
            "/v1/functions/{function}",
        ),
        ("/v1/functions".to_owned(), "/v1/functions"),
        ("/v1/buckets".to_owned(), "/v1/buckets"),
        ("/v1/agents".to_owned(), "/v1/agents"),
        ("/api/tenants/default".to_owned(), "/api/tenants/{tenant}"),
        ("/api/health".to_owned(), "/api/health"),
    ] {
        let answer = relay.admin(Method::GET, &path, None, StatusCode::OK).await;
        answers.insert(("GET", route.to_owned(), 200), answer);
    }
    for ((method, route, status), answer) in &answers {
        let what = format!("{method} {route}");
        let schema = answer_schema(&doc, method, route, *status);
        conforms(&doc, &what, schema, answer);
    }
    // And one level down: an event of a page, a delivery of an event.
    let page = &answers[&("GET", "/v1/events".to_owned(), 200)];
    let event_schema = json!({"$ref": "#/components/schemas/EventOut"});
    conforms(
        &doc,
        "an event of a page",
        &event_schema,
        &page["events"][0],
    );
    let detail = &answers[&("GET", "/v1/events/{event}".to_owned(), 200)];
    let delivery = json!({"$ref": "#/components/schemas/DeliveryOut"});
    conforms(&doc, "a delivery", &delivery, &detail["deliveries"][0]);
}
