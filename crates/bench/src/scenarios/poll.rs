//! Scenario 6, the pull API: `GET /api/events` (Radarboard poll with the
//! poll secret) and `GET /v1/events` (cursor pages with an agent-free
//! admin token) against a store holding N events, over keep-alive
//! connections for a fixed time; then the dashboard's events page (`GET
//! /ui/`, the newest 50, signed in) one request at a time, so its p50 is
//! the page's server time plus a loopback round trip (issue 17's goal:
//! under 50 ms with 1,000,000 events).
//!
//! The poll route limits each client address to 20 requests a minute; the
//! relay is started with 127.0.0.1 as a trusted proxy and each poll names
//! a different client in `X-Forwarded-For`, so the figure is the route's
//! cost (rate-limit check included), not the limit.

use std::time::{Duration, Instant};

use serde_json::json;

use super::post_burst;
use crate::relay::{Relay, RelaySpec, Signed, ADMIN, POLL_SECRET};
use crate::report::Table;
use crate::sender::{Samples, Sender};

pub(crate) struct Params {
    pub(crate) events: u64,
    pub(crate) seconds: u64,
    pub(crate) connections: usize,
    pub(crate) limit: usize,
    pub(crate) body_size: usize,
}

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let relay = Relay::start(spec).await?;
    let bucket = relay.bucket("bench").await?;
    let input = relay.github_input(&bucket, "poll").await?;
    let signed = Signed::github(p.body_size)?;
    let errors = post_burst(&relay, &input, &signed, 1..p.events + 1, 8).await?;
    anyhow::ensure!(errors == 0, "{errors} webhooks were not answered 200");
    let mut table = Table::new(
        "poll",
        format!(
            "{} stored events ({} B bodies); {} connections for {} s per route; pages of {}",
            p.events, p.body_size, p.connections, p.seconds, p.limit
        ),
        vec![
            "route", "requests", "req/s", "events/s", "p50 ms", "p99 ms", "non-200",
        ],
    );
    table.header();
    let poll_auth = format!("Bearer {POLL_SECRET}");
    let admin_auth = format!("Bearer {ADMIN}");
    let cookie = Sender::connect(relay.addr()).await?.sign_in(ADMIN).await?;
    // Oldest first from the start: every page is full.
    let routes = [
        (
            "/api/events",
            format!("/api/events?since=0&limit={}", p.limit),
            ("authorization", poll_auth),
            true,
            p.connections,
        ),
        (
            "/v1/events",
            format!("/v1/events?limit={}", p.limit),
            ("authorization", admin_auth),
            false,
            p.connections,
        ),
        // Newest first: the page the dashboard opens on.
        ("/ui/", "/ui/".to_owned(), ("cookie", cookie), false, 1),
    ];
    for (name, target, (header, auth), spread, connections) in routes {
        // The first request of a credential pays bcrypt (then cached): not
        // part of the route's cost.
        let mut warm = Sender::connect(relay.addr()).await?;
        let (status, _) = warm
            .get(
                &target,
                &[(header, &auth), ("x-forwarded-for", "10.255.255.255")],
            )
            .await?;
        anyhow::ensure!(status == 200, "{name}: {status}");
        let deadline = Instant::now() + Duration::from_secs(p.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (addr, target, auth) = (relay.addr().to_owned(), target.clone(), auth.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender = Sender::connect(&addr).await?;
                let mut latencies = Vec::new();
                let mut bad = 0u64;
                let mut i = 0u32;
                while Instant::now() < deadline {
                    i += 1;
                    // A client address per request: 10.<c>.<i>.
                    let id = (c as u32) << 16 | (i & 0xffff);
                    let ip = format!("10.{}.{}.{}", id >> 16 & 0xff, id >> 8 & 0xff, id & 0xff);
                    let mut headers = vec![(header, auth.as_str())];
                    if spread {
                        headers.push(("x-forwarded-for", ip.as_str()));
                    }
                    let t0 = Instant::now();
                    let (status, _) = sender.get(&target, &headers).await?;
                    if status == 200 {
                        latencies.push(t0.elapsed());
                    } else {
                        bad += 1;
                    }
                }
                anyhow::Ok((latencies, bad))
            }));
        }
        let mut all = Vec::new();
        let mut bad = 0;
        for t in tasks {
            let (l, b) = t.await??;
            all.extend(l);
            bad += b;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let s = Samples::new(all);
        let per_page = match header {
            "cookie" => 50.min(p.events) as f64,
            _ => p.limit.min(p.events as usize) as f64,
        };
        table.row(vec![
            json!(name),
            json!(s.len()),
            json!(s.len() as f64 / elapsed),
            json!(s.len() as f64 * per_page / elapsed),
            json!(s.ms(0.5)),
            json!(s.ms(0.99)),
            json!(bad),
        ]);
    }
    relay.stop().await;
    Ok(table.finish())
}
