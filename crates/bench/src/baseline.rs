//! `hookrelay-baseline`: the physical reference for ingest (issue 14).
//!
//! What a webhook relay cannot avoid doing, and nothing else: axum on the
//! same runtime, the same GitHub HMAC-SHA256 check (constant-time) on the
//! same body, and one row per request in SQLite with the relay's own
//! durability settings (WAL, `synchronous=FULL`, the relay's checkpoint
//! interval) through a group commit — many requests, one fsync — answered
//! only after the commit. No JSON parse, no encryption, no dedup, no rate
//! limit, no ULID, no delivery rows. `hookrelay-bench ingest` runs it
//! alternately with the relay under the same load and reports the ratio:
//! the machine's swings (32–41k/s for this binary on one day) cancel out
//! of a ratio, not of a rate.
//!
//! It prints `hookrelay-baseline listening on http://ADDR` once bound and
//! answers `GET /readyz`, like the relay, so the bench drives both alike.

use std::path::PathBuf;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use clap::Parser;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::oneshot;

/// The relay's own body limit for a GitHub input is larger; the bench
/// sends 1 KiB, so any limit above that measures the same.
const BODY_LIMIT: usize = 1 << 20;

/// Requests queued for the writer before handlers wait: the relay's
/// writer queue is of the same order.
const QUEUE: usize = 4096;

/// Rows in one commit at most: enough that a commit's fsync is shared by
/// every request that arrived during the previous one.
const MAX_BATCH: usize = 1024;

/// The relay's own checkpoint interval (`store/sqlite/schema.rs`), so the
/// two pay the same checkpoints.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

#[derive(Parser)]
#[command(about = "The ingest baseline: axum + GitHub HMAC + a SQLite group commit")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Where the SQLite file goes (a temporary directory by default).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The GitHub webhook secret.
    #[arg(long, default_value = "bench-secret")]
    secret: String,
}

/// One accepted request on its way to the writer.
struct Row {
    delivery: String,
    body: Bytes,
    done: oneshot::Sender<bool>,
}

#[derive(Clone)]
struct App {
    secret: std::sync::Arc<Vec<u8>>,
    rows: tokio::sync::mpsc::Sender<Row>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let temp = tempfile::tempdir()?;
    let dir = cli.data_dir.clone().unwrap_or_else(|| temp.path().into());
    let conn = open(&dir.join("baseline.db"))?;
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let writer = std::thread::spawn(move || write_loop(conn, rx));
    let app = App {
        secret: std::sync::Arc::new(cli.secret.into_bytes()),
        rows: tx,
    };
    tokio::runtime::Runtime::new()?.block_on(serve(&cli.listen, app))?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))?;
    Ok(())
}

async fn serve(listen: &str, app: App) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "hookrelay-baseline listening on http://{}",
        listener.local_addr()?
    );
    let router = axum::Router::new()
        .route("/v1/webhooks/{input}", post(ingest))
        .route("/readyz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}

async fn ingest(State(app): State<App>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(signature) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&app.secret) else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    mac.update(&body);
    if mac.verify_slice(&signature).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let delivery = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (done, committed) = oneshot::channel();
    if app
        .rows
        .send(Row {
            delivery,
            body,
            done,
        })
        .await
        .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match committed.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn open(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path).context("opening the baseline's SQLite file")?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "no WAL ({mode})");
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (
             id INTEGER PRIMARY KEY, received INTEGER NOT NULL,
             delivery TEXT NOT NULL, body BLOB NOT NULL)",
    )?;
    Ok(conn)
}

/// Takes whatever is queued (at least one row), commits it as one
/// transaction, then answers every request in it.
fn write_loop(mut conn: rusqlite::Connection, mut rx: tokio::sync::mpsc::Receiver<Row>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        let ok = commit(&mut conn, &batch).is_ok();
        for row in batch.drain(..) {
            let _ = row.done.send(ok);
        }
    }
}

fn commit(conn: &mut rusqlite::Connection, batch: &[Row]) -> rusqlite::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO events (received, delivery, body) VALUES (?1, ?2, ?3)")?;
        for row in batch {
            insert.execute(rusqlite::params![now, row.delivery, &row.body[..]])?;
        }
    }
    tx.commit()
}
