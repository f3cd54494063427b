//! Functions (issue 16): the ingest rate of an input whose function sets a
//! header against the same input without one, in one run, rounds
//! alternating, and the per-call cost (`durationMicros` of `invoke`, the
//! time on the function thread) at p50 and p99. The webhooks are the
//! signed GitHub ones of `ingest` with a JSON body of `body_size` bytes.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use super::ingest::{load, median, Round};
use crate::relay::{Relay, RelaySpec, Signed};
use crate::report::Table;
use crate::sender::Samples;

pub(crate) struct Params {
    pub(crate) connections: usize,
    pub(crate) seconds: u64,
    pub(crate) body_size: usize,
    pub(crate) rounds: usize,
    /// `invoke` calls for the per-call cost.
    pub(crate) calls: usize,
}

/// The function under test: what a typical script does with a JSON body.
const SOURCE: &str = r#"
local body = json.decode(r.RequestBody)
r:SetRequestHeader("x-bench", body and "json" or "other")
"#;

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let relay = Relay::start(spec).await?;
    let bucket = relay.bucket("bench").await?;
    let plain = relay.github_input(&bucket, "plain").await?;
    let function = relay
        .admin(
            reqwest::Method::POST,
            "/v1/functions",
            Some(json!({"name": "bench", "source": SOURCE})),
            201,
        )
        .await?;
    let function = function["id"].as_str().context("function id")?.to_owned();
    let with = relay.github_input(&bucket, "with-function").await?;
    let with_id = with.trim_start_matches("/v1/webhooks/");
    relay
        .admin(
            reqwest::Method::PATCH,
            &format!("/v1/inputs/{with_id}"),
            Some(json!({"functionId": function})),
            200,
        )
        .await?;
    let signed = Signed::github(p.body_size)?;
    let targets = std::slice::from_ref(&relay);
    let (mut without, mut with_fn): (Vec<Round>, Vec<Round>) = (Vec::new(), Vec::new());
    for round in 0..p.rounds.max(1) {
        let tag = format!("fn-{round}");
        // Alternate which goes first, so drift favours neither.
        if round % 2 == 0 {
            without.push(
                load(
                    targets,
                    None,
                    &plain,
                    &signed,
                    p.connections,
                    p.seconds,
                    &tag,
                )
                .await?,
            );
            with_fn.push(
                load(
                    targets,
                    None,
                    &with,
                    &signed,
                    p.connections,
                    p.seconds,
                    &tag,
                )
                .await?,
            );
        } else {
            with_fn.push(
                load(
                    targets,
                    None,
                    &with,
                    &signed,
                    p.connections,
                    p.seconds,
                    &tag,
                )
                .await?,
            );
            without.push(
                load(
                    targets,
                    None,
                    &plain,
                    &signed,
                    p.connections,
                    p.seconds,
                    &tag,
                )
                .await?,
            );
        }
    }
    let errors: u64 = without.iter().chain(&with_fn).map(|r| r.errors).sum();
    let body = String::from_utf8_lossy(&signed.body).into_owned();
    let mut micros = Vec::with_capacity(p.calls);
    for _ in 0..p.calls {
        let out = relay
            .admin(
                reqwest::Method::POST,
                &format!("/v1/functions/{function}/invoke"),
                Some(json!({"body": body, "headers": {"content-type": "application/json"}})),
                200,
            )
            .await?;
        if !out["error"].is_null() {
            bail!("the bench function failed: {}", out["error"]);
        }
        micros.push(Duration::from_micros(
            out["durationMicros"].as_u64().unwrap_or(0),
        ));
    }
    let calls = Samples::new(micros);
    let rate = median(without.iter().map(|r| r.rate));
    let rate_fn = median(with_fn.iter().map(|r| r.rate));
    let mut table = Table::new(
        "functions",
        format!(
            "signed GitHub webhooks ({} B JSON) to an input without a function and to one whose function decodes the JSON and sets a header; {} connections, {} s per round, {} rounds alternating, medians; per-call cost from {} invoke calls",
            p.body_size, p.connections, p.seconds, p.rounds, p.calls
        ),
        vec![
            "req/s without", "req/s with function", "ratio", "CPU us/event without",
            "CPU us/event with", "call p50 us", "call p99 us", "errors",
        ],
    );
    table.header();
    table.row(vec![
        json!(rate),
        json!(rate_fn),
        json!(if rate > 0.0 { rate_fn / rate } else { 0.0 }),
        json!(median(without.iter().map(|r| r.cpu_per_event_us))),
        json!(median(with_fn.iter().map(|r| r.cpu_per_event_us))),
        json!(calls.ms(0.5) * 1000.0),
        json!(calls.ms(0.99) * 1000.0),
        json!(errors),
    ]);
    relay.stop().await;
    Ok(table.finish())
}
