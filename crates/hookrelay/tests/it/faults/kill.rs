//! kill -9 during steady load: four senders post unique markers to a plain
//! input whose bucket has a public output (delivered by the server itself
//! to a recording destination on 127.0.0.1, `--allow-private-destinations`).
//! At a random moment of each of 30 rounds `serve` is SIGKILLed, then restarted
//! on the same data dir on a new port, and the senders move there. After
//! the last round every marker that was answered 2xx must be in the store
//! and at the destination (duplicates are counted, not failures: delivery
//! is at-least-once).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{ingest_url, start_serve, wait_delivered, Api, Load, Rng};

/// Kill points: the issue asks for at least 20.
const KILLS: usize = 30;
const SENDERS: usize = 4;
/// Acknowledged requests each round waits for before its random delay
/// (random in this range), so every kill lands on a server under load,
/// some of them just after it opened the store and resumed deliveries.
const ACKS_BEFORE_KILL: (u64, u64) = (1, 40);
/// The random part of each kill moment, in ms.
const KILL_DELAY_MS: (u64, u64) = (0, 250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let started = Instant::now();
    let data = tempfile::tempdir().expect("a data dir");
    let destination = testkit::Destination::spawn().await;
    let flags = ["--allow-private-destinations"];
    let mut serve = start_serve(data.path().to_owned(), &flags).await;
    let api = Api::new(&serve.url);
    let setup = api
        .setup(
            "kill",
            Some(json!({
                "url": format!("{}/hook", destination.url),
                "internal": false,
                "timeoutMs": 5000,
                // The default retry policy (8 attempts, 5 s first delay):
                // deliveries a kill cut short are released when the store
                // opens, due at once, so none waits for a backoff.
            })),
        )
        .await;
    let mut rng = Rng::from_env_or_clock();
    let seed = rng.seed();
    let load = Load::start(SENDERS, ingest_url(&serve.url, &setup.input));

    let mut least_acked = 0;
    for round in 0..KILLS {
        let before = load.ledger.acked_count();
        let acks = rng.range(ACKS_BEFORE_KILL.0, ACKS_BEFORE_KILL.1) as usize;
        least_acked += acks;
        testkit::wait_until(
            Duration::from_secs(30),
            &format!("round {round}: {acks} acknowledged requests"),
            || async { load.ledger.acked_count() >= before + acks },
        )
        .await;
        // The kill moment itself is the random part, not a synchronisation.
        let delay = rng.range(KILL_DELAY_MS.0, KILL_DELAY_MS.1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        tokio::task::spawn_blocking(move || serve.kill9())
            .await
            .expect("kill -9");
        serve = start_serve(data.path().to_owned(), &flags).await;
        load.retarget(ingest_url(&serve.url, &setup.input));
    }
    let before = load.ledger.acked_count();
    testkit::wait_until(
        Duration::from_secs(30),
        "the last server acknowledges requests",
        || async { load.ledger.acked_count() > before },
    )
    .await;
    let ledger = load.finish().await;
    let stopped = Instant::now();

    let api = Api::new(&serve.url);
    let acked: HashSet<String> = ledger.acked().into_iter().collect();
    let stored = api.stored_markers(&setup.bucket).await;
    let lost: Vec<&String> = acked.difference(&stored).collect();
    let counts = wait_delivered(&destination, &stored, Duration::from_secs(90)).await;
    let caught_up = stopped.elapsed().as_secs_f64();
    let duplicates = super::duplicates(&counts);
    println!(
        "faults: kill -9: {KILLS} kill points (seed {seed}), {} events acknowledged, {} lost, \
         {} stored without an answer, {} requests cut or refused by a dead server, \
         other answers {:?}, {} delivered, {duplicates} duplicates delivered (all in {caught_up:.1} s after the load stopped), {:.1} s",
        acked.len(),
        lost.len(),
        stored.len() - (acked.len() - lost.len()),
        ledger.unanswered.load(std::sync::atomic::Ordering::Relaxed),
        ledger.refused.lock().expect("ledger lock"),
        counts.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged events are not in the store, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(acked.len() >= least_acked);
}
