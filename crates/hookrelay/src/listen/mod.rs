//! `hookrelay listen` (DESIGN §2): the development shortcut, like `stripe
//! listen`. `listen BUCKET --forward URL`, or several `BUCKET=URL` pairs.
//!
//! With a token that may read the bucket's events (the admin token printed
//! at first start, a tenant or a poll token), each pair reads the bucket's
//! events itself ([`pull`]): its delivery target is its own cursor, not the
//! bucket's outputs, so every event arrives once whether the bucket has no
//! output or two, and a restart resumes from the cursor ([`cursor`]). With
//! an agent token, which may not read events, it runs an agent whose
//! destination is the URL: that receives the deliveries of the bucket's
//! internal outputs (one per output).
//!
//! Depends on `agent` and `forward` for the sending, [`crate::serve`] for
//! logging and signals.

mod cursor;
mod print;
mod pull;
mod relay;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::agent::Connection;
use crate::exit::ConfigError;
use crate::logs::LogFormat;
use crate::signals::cancel_on_signal;
use print::Line;
use relay::{Access, Refused, Relay};

/// `hookrelay listen`.
#[derive(Args, Clone)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    connection: Connection,
    /// The bucket to listen to (id or name) with --forward, or one or more
    /// BUCKET=URL pairs.
    #[arg(required = true, value_name = "BUCKET | BUCKET=URL")]
    targets: Vec<String>,
    /// Where to forward each request, e.g. http://localhost:3000/hook.
    #[arg(long, env = "HOOKRELAY_FORWARD")]
    forward: Option<String>,
    /// The group, which names where this listen resumes [default:
    /// listen-<machine>-<hash of the URL>].
    #[arg(long, env = "HOOKRELAY_GROUP")]
    group: Option<String>,
    /// Forward only these event types (comma-separated, e.g. push,ping).
    #[arg(long, value_delimiter = ',', value_name = "TYPE,...")]
    events: Vec<String>,
    /// Print one JSON line per forwarded event instead of a table line.
    #[arg(long)]
    print_json: bool,
    /// Where cursors are kept [default: $XDG_STATE_HOME/hookrelay or
    /// ~/.local/state/hookrelay].
    #[arg(long, env = "HOOKRELAY_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

/// One (bucket, URL) of the session.
struct Target {
    bucket: String,
    forward: String,
}

pub(crate) async fn run_listen(args: ListenArgs, log: LogFormat) -> Result<()> {
    crate::logs::init(log, false);
    let targets = targets(&args)?;
    let c = &args.connection.relay;
    let server = c.server_url()?;
    let relay = Relay::new(&server, c.bearer()?, c.ca_file.as_deref())?;
    let stop = CancellationToken::new();
    cancel_on_signal(stop.clone());
    let (lines, receiver) = tokio::sync::mpsc::channel(1024);
    let printer = tokio::spawn(print::run(receiver, args.print_json, targets.len() > 1));

    let access = relay.access(&targets[0].bucket).await?;
    let host = cursor::machine_name();
    let mut tasks = tokio::task::JoinSet::new();
    for t in targets {
        let group = args
            .group
            .clone()
            .unwrap_or_else(|| cursor::default_group(&host, &t.forward));
        print::banner(&t.bucket, &t.forward, &group, access);
        let lines = lines.clone();
        let stop = stop.clone();
        match access {
            Access::Events => {
                let state_dir = args
                    .state_dir
                    .clone()
                    .unwrap_or_else(cursor::default_state_dir);
                let pair = pull::Pair {
                    cursor: cursor::CursorFile::new(&state_dir, &group, &t.bucket),
                    bucket: t.bucket,
                    forward: t.forward,
                    events: args.events.clone(),
                };
                let relay = relay.clone();
                tasks.spawn(async move {
                    let forwarder = forward::Forwarder::new(forward::EgressPolicy::AllowAll)?;
                    pull::run(&relay, &forwarder, pair, lines, stop).await
                });
            }
            Access::AgentOnly => {
                let config = crate::agent::config(
                    &args.connection,
                    vec![t.bucket.clone()],
                    group,
                    Some(t.forward),
                )?;
                tasks.spawn(run_agent(config, t.bucket, lines, stop));
            }
        }
    }
    drop(lines);
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        if let Err(err) = done.map_err(anyhow::Error::new).and_then(|r| r) {
            // One pair refused for good ends the session.
            stop.cancel();
            result = Err(err);
        }
    }
    let _ = printer.await;
    result
}

/// The agent of one pair, its forwards reported as lines.
async fn run_agent(
    config: agent::AgentConfig,
    bucket: String,
    lines: tokio::sync::mpsc::Sender<Line>,
    stop: CancellationToken,
) -> Result<()> {
    let (report, mut forwarded) = tokio::sync::mpsc::channel(256);
    let relay_lines = tokio::spawn(async move {
        while let Some(f) = forwarded.recv().await {
            let _ = lines.send(Line::from_agent(&bucket, &f)).await;
        }
    });
    let result = agent::run(config, stop, Some(report)).await;
    let _ = relay_lines.await;
    Ok(result?)
}

/// The (bucket, URL) pairs named on the command line.
fn targets(args: &ListenArgs) -> Result<Vec<Target>, ConfigError> {
    let mut out = Vec::new();
    for t in &args.targets {
        let (bucket, forward) = match (t.split_once('='), &args.forward) {
            (Some((b, u)), None) => (b.to_owned(), u.to_owned()),
            (None, Some(u)) if args.targets.len() == 1 => (t.clone(), u.clone()),
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "give either BUCKET --forward URL or BUCKET=URL pairs, not both".into(),
                ))
            }
            (None, _) => {
                return Err(ConfigError(format!(
                    "{t:?}: give --forward URL, or write it as BUCKET=URL"
                )))
            }
        };
        if bucket.is_empty() {
            return Err(ConfigError(format!("{t:?}: the bucket is empty")));
        }
        if !(forward.starts_with("http://") || forward.starts_with("https://")) {
            return Err(ConfigError(format!(
                "the forward URL {forward:?} must be an http(s) URL"
            )));
        }
        out.push(Target { bucket, forward });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ListenArgs,
    }

    fn parse(argv: &[&str]) -> Result<Vec<(String, String)>, String> {
        let cli = Cli::try_parse_from(std::iter::once("listen").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        targets(&cli.args)
            .map(|ts| ts.into_iter().map(|t| (t.bucket, t.forward)).collect())
            .map_err(|e| e.0)
    }

    #[test]
    fn one_bucket_with_forward_or_several_pairs() {
        let one = parse(&["prod", "--forward", "http://localhost:3000/hook"]).unwrap();
        assert_eq!(one, [("prod".into(), "http://localhost:3000/hook".into())]);
        let two = parse(&["a=http://localhost:1/x", "b=https://h/y?q=1"]).unwrap();
        assert_eq!(two[1], ("b".into(), "https://h/y?q=1".into()));
        assert!(parse(&["a", "b", "--forward", "http://localhost:1"]).is_err());
        assert!(parse(&["a"]).is_err());
        assert!(parse(&["a=ftp://x"]).is_err());
        assert!(parse(&["a=http://x", "--forward", "http://y"]).is_err());
    }
}
