//! Master keys: where `serve` gets them ([`load`]), and `hookrelay keys
//! list|rotate|reencrypt|retire`, which act on a data directory directly
//! (not through the HTTP API: keys never travel over the network).
//!
//! Keys come from `HOOKRELAY_MASTER_KEY` (base64 of 32 bytes, or a
//! comma-separated list newest first) when it is set, else from the key
//! file `master.key` in the data directory, created with mode 0600 at first
//! start. Rotation, step by step:
//! 1. `keys rotate` puts a new key first (in the file; with the variable,
//!    it prints a key to put first in it). Nothing changes until...
//! 2. ...the server restarts: it encrypts with the new key from then on,
//!    and still decrypts with the old ones.
//! 3. `keys reencrypt` rewrites older records under the new key, in batches
//!    that each commit; it may run while that server runs, and an
//!    interrupted run just starts again where records are still old.
//! 4. `keys retire <id>` removes the old key, and refuses while any record,
//!    or the running server, still uses it.
//!
//! With `--store redis://...` (or `HOOKRELAY_STORE`, as `serve` reads it)
//! the same commands act on the Redis namespace the nodes share; "restart"
//! then means every node, and the key usually comes from the variable.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use crypto::{keyfile, Key, KeyId, Keyring};
use store::maintenance::{KeyUsage, ReencryptStep};
use store::redis::{RedisKeyMaintenance, RedisOptions};
use store::sqlite::KeyMaintenance;

use crate::exit::ConfigError;

/// The environment variable holding the master key(s).
pub(crate) const ENV: &str = "HOOKRELAY_MASTER_KEY";

/// Where the keys came from.
pub(crate) enum Source {
    Env,
    File(PathBuf),
}

/// The keys of `data_dir`: from `env_value` (`HOOKRELAY_MASTER_KEY`) if set,
/// else from the key file, which `create` allows to be made. Every problem
/// is a [`ConfigError`] (exit 64) naming the file or the variable, never a
/// key.
pub(crate) fn load(
    data_dir: &Path,
    env_value: Option<&str>,
    create: bool,
) -> anyhow::Result<(Vec<Key>, Source)> {
    let bad = |e: crypto::KeyError| anyhow::Error::new(ConfigError(format!("master key: {e}")));
    if let Some(value) = env_value.filter(|v| !v.trim().is_empty()) {
        return Ok((keyfile::parse_list(value, ENV).map_err(bad)?, Source::Env));
    }
    let path = data_dir.join(keyfile::FILE_NAME);
    let keys = if create {
        let (keys, created) = keyfile::load_or_create(data_dir).map_err(bad)?;
        if created {
            tracing::warn!(
                file = %path.display(),
                "created a new master key file; back it up apart from the data: without it the stored payloads cannot be read"
            );
        }
        keys
    } else if path.exists() {
        keyfile::read(&path).map_err(bad)?
    } else {
        bail!(ConfigError(format!(
            "no master key: {ENV} is not set and {} does not exist",
            path.display()
        )));
    };
    Ok((keys, Source::File(path)))
}

#[derive(Args, Debug)]
pub(crate) struct KeysArgs {
    /// The data directory of the store [default: ./hookrelay-data].
    #[arg(long, env = "HOOKRELAY_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// `sqlite` (the data directory's file, the default) or the
    /// `redis://HOST:PORT/DB` (`rediss://`) the nodes share.
    #[arg(long, env = "HOOKRELAY_STORE", global = true)]
    store: Option<String>,
    /// The nodes' Redis namespace [default: hr].
    #[arg(long, env = "HOOKRELAY_REDIS_NAMESPACE", global = true)]
    redis_namespace: Option<String>,
    /// A private CA (PEM) that signs a `rediss://` server's certificate.
    #[arg(long, env = "HOOKRELAY_REDIS_CA_FILE", global = true)]
    redis_ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Show the keys, the active one, and how many records each protects.
    List,
    /// Add a new key that encrypts after the next server start.
    Rotate,
    /// Rewrite records sealed under older keys with the active key.
    Reencrypt {
        /// Records per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Remove a key no record uses any more.
    Retire {
        /// The key id (8 hex digits, as `keys list` shows).
        id: String,
    },
}

/// Where the sealed records are.
enum Target {
    Sqlite(PathBuf),
    Redis(String, RedisOptions),
}

impl Target {
    fn of(args: &KeysArgs, data_dir: &Path) -> anyhow::Result<Self> {
        match args.store.as_deref() {
            None | Some("sqlite") => Ok(Target::Sqlite(data_dir.to_path_buf())),
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                let mut options = RedisOptions::default();
                if let Some(ns) = &args.redis_namespace {
                    options.namespace.clone_from(ns);
                }
                if let Some(path) = &args.redis_ca_file {
                    options.ca_pem = Some(std::fs::read(path).map_err(|e| {
                        ConfigError(format!("--redis-ca-file {}: {e}", path.display()))
                    })?);
                }
                Ok(Target::Redis(url.to_owned(), options))
            }
            Some(_) => bail!(ConfigError(
                "--store: expected sqlite, redis://HOST:PORT/DB or rediss://HOST:PORT/DB".into()
            )),
        }
    }

    /// Opens the store for maintenance; `None` when there is none yet.
    fn open(&self, ring: &Keyring) -> anyhow::Result<Option<Maintenance>> {
        match self {
            Target::Sqlite(dir) => match KeyMaintenance::open(dir, ring.clone()) {
                Ok(store) => Ok(Some(Maintenance::Sqlite(store))),
                Err(store::Error::NotFound) => Ok(None),
                Err(e) => Err(e.into()),
            },
            Target::Redis(url, options) => {
                let runtime = tokio::runtime::Handle::current();
                let store = runtime
                    .block_on(RedisKeyMaintenance::open(url, ring.clone(), options))
                    .context("cannot reach the Redis store")?;
                Ok(Some(Maintenance::Redis(store, runtime)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Sqlite(dir) => dir.display().to_string(),
            Target::Redis(_, options) => format!("the Redis namespace {}", options.namespace),
        }
    }
}

/// Key maintenance on either store.
enum Maintenance {
    Sqlite(KeyMaintenance),
    /// Driven from this blocking thread (`keys` runs in `spawn_blocking`).
    Redis(RedisKeyMaintenance, tokio::runtime::Handle),
}

impl Maintenance {
    fn usage(&mut self) -> anyhow::Result<KeyUsage> {
        Ok(match self {
            Maintenance::Sqlite(store) => store.usage()?,
            Maintenance::Redis(store, rt) => rt.block_on(store.usage())?,
        })
    }

    fn reencrypt_step(&mut self, batch: usize) -> anyhow::Result<ReencryptStep> {
        Ok(match self {
            Maintenance::Sqlite(store) => store.reencrypt_step(batch)?,
            Maintenance::Redis(store, rt) => rt.block_on(store.reencrypt_step(batch))?,
        })
    }
}

pub(crate) fn run(args: KeysArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("hookrelay-data"));
    let target = Target::of(&args, &data_dir)?;
    let env_value = std::env::var(ENV).ok();
    let (keys, source) = load(&data_dir, env_value.as_deref(), false)?;
    let ring = Keyring::new(&keys).map_err(|e| ConfigError(format!("master key: {e}")))?;
    match args.command {
        KeysCommand::List => list(&target, &ring, &source),
        KeysCommand::Rotate => rotate(&keys, &source),
        KeysCommand::Reencrypt { batch } => reencrypt(&target, &ring, batch),
        KeysCommand::Retire { id } => retire(&target, &keys, &ring, &source, &id),
    }
}

fn usage(target: &Target, ring: &Keyring) -> anyhow::Result<(Maintenance, KeyUsage)> {
    let mut store = target
        .open(ring)?
        .with_context(|| format!("no store in {}", target.describe()))?;
    let usage = store.usage()?;
    Ok((store, usage))
}

fn list(target: &Target, ring: &Keyring, source: &Source) -> anyhow::Result<()> {
    let usage = match target.open(ring)? {
        Some(mut store) => store.usage()?,
        None => KeyUsage::default(),
    };
    match source {
        Source::Env => crate::outln!("keys from {ENV}"),
        Source::File(path) => crate::outln!("keys from {}", path.display()),
    }
    crate::outln!(
        "{:<10} {:<8} {:>10} {:>8} {:>8} {:>9} {:>8}",
        "KEY",
        "STATE",
        "EVENTS",
        "INPUTS",
        "BUCKETS",
        "FUNCTIONS",
        "TUNNELS"
    );
    let mut ids = ring.ids();
    ids.extend(usage.keys().into_iter().filter(|id| !ring.contains(*id)));
    for id in ids {
        let state = match (ring.contains(id), id == ring.active()) {
            (true, true) => "active",
            (true, false) => "old",
            (false, _) => "MISSING",
        };
        let n = |m: &std::collections::BTreeMap<KeyId, u64>| m.get(&id).copied().unwrap_or(0);
        crate::outln!(
            "{id:<10} {state:<8} {:>10} {:>8} {:>8} {:>9} {:>8}",
            n(&usage.events),
            n(&usage.inputs),
            n(&usage.buckets),
            n(&usage.functions),
            n(&usage.tunnels)
        );
    }
    if let Some(canary) = usage.canary {
        crate::outln!("\nthe cluster's key canary is sealed under key {canary}");
    }
    if let Some(server) = usage.server_active.filter(|id| *id != ring.active()) {
        crate::outln!(
            "\nthe server last started with key {server} active: restart it to use {}",
            ring.active()
        );
    }
    Ok(())
}

fn rotate(keys: &[Key], source: &Source) -> anyhow::Result<()> {
    let new = Key::generate();
    match source {
        Source::File(path) => {
            let mut all = vec![new.clone()];
            all.extend_from_slice(keys);
            keyfile::write(path, &all).map_err(|e| ConfigError(format!("master key: {e}")))?;
            crate::outln!(
                "added key {} to {}; it encrypts once the server restarts.\n\
                 then run `hookrelay keys reencrypt`, and `hookrelay keys retire <old id>`.",
                new.id(),
                path.display()
            );
        }
        Source::Env => {
            crate::outln!(
                "the keys come from {ENV}, which this command cannot change.\n\
                 put this new key ({}) first in it, comma-separated, keep the old ones after it, and restart the server:\n\n    {}\n",
                new.id(),
                new.to_base64()
            );
        }
    }
    Ok(())
}

fn reencrypt(target: &Target, ring: &Keyring, batch: usize) -> anyhow::Result<()> {
    let active = ring.active();
    let (mut store, before) = usage(target, ring)?;
    if let Some(server) = before.server_active.filter(|id| *id != active) {
        bail!(
            "the server last started with key {server} active, not {active}: restart it with the rotated keys first, \
             or records rewritten under {active} would be unreadable to it"
        );
    }
    let (mut rewritten, mut unreadable) = (0, 0);
    loop {
        let step = store.reencrypt_step(batch)?;
        rewritten += step.rewritten;
        unreadable += step.unreadable;
        if step.rewritten > 0 {
            eprintln!("re-encrypted {rewritten} records so far");
        }
        if step.done {
            break;
        }
    }
    crate::outln!("re-encrypted {rewritten} records under key {active}");
    if unreadable > 0 {
        bail!(
            "{unreadable} records could not be decrypted and were left as they are (see the log)"
        );
    }
    Ok(())
}

fn retire(
    target: &Target,
    keys: &[Key],
    ring: &Keyring,
    source: &Source,
    id: &str,
) -> anyhow::Result<()> {
    let id: KeyId = id.parse().map_err(|e| ConfigError(format!("{e}")))?;
    if !ring.contains(id) {
        bail!(ConfigError(format!("key {id} is not in the keyring")));
    }
    if id == ring.active() {
        bail!("key {id} is the active key: rotate first, restart, re-encrypt, then retire it");
    }
    let (_store, usage) = usage(target, ring)?;
    if usage.server_active == Some(id) {
        bail!(
            "the server last started with key {id} active: restart it with the rotated keys first"
        );
    }
    let left = usage.records(id);
    if left > 0 {
        bail!(
            "{left} records are still sealed under key {id}: run `hookrelay keys reencrypt` first"
        );
    }
    match source {
        Source::File(path) => {
            let kept: Vec<Key> = keys.iter().filter(|k| k.id() != id).cloned().collect();
            keyfile::write(path, &kept).map_err(|e| ConfigError(format!("master key: {e}")))?;
            crate::outln!("retired key {id}: removed from {}", path.display());
        }
        Source::Env => {
            crate::outln!("no record uses key {id}: remove it from {ENV} and restart the server");
        }
    }
    Ok(())
}
