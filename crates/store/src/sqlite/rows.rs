//! Translation between SQLite rows and model types, and between rusqlite
//! errors and [`crate::Error`].
//!
//! Also the few query runners (`one`, `many`, `changed`, `exists`) the SQL
//! modules share.
//!
//! Every `*_COLS` list matches the column order its decoder reads, so a
//! query is written as `SELECT {COLS} FROM ...` and decoded by position.

use std::str::FromStr;

use crypto::Keyring;
use model::{
    AgentMode, Bucket, Delivery, DeliveryState, Event, EventBody, Input, IntegrationKind, Output,
    Secret, Tenant, Token, TokenScope,
};
use rusqlite::types::FromSql;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Params, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{sealed, Error, Result, TenantRecord};

pub(super) const TENANT_COLS: &str = "id, label, enabled, created_at, poll_secret_hash";
pub(super) const BUCKET_COLS: &str =
    "id, tenant, name, auth, ephemeral, retention_seconds, catchup_seconds, enabled, created_at";
pub(super) const INPUT_COLS: &str = "id, tenant, bucket, name, integration, generic_hmac, \
    secrets, response, enabled, body_limit, rate_limit, timestamp_tolerance_seconds, created_at, handshakes, function_id";
pub(super) const OUTPUT_COLS: &str =
    "id, tenant, bucket, url, internal, timeout_ms, headers, retry, created_at, concurrency, ordered, \
    function_id";
pub(super) const TOKEN_COLS: &str =
    "key, tenant, scope, buckets, mode, description, secret_hash, created_at";
pub(super) const EVENT_COLS: &str = "id, tenant, bucket, input, integration, received_at, \
    method, path, payload, body_size, client_ip, delivery_id, event_type, event_count, verified, marks";
pub(super) const DELIVERY_COLS: &str = "event_id, output_id, grp, state, attempts, updated_at";

/// Maps a rusqlite error to the store's domain error. Messages carry SQLite's
/// own text, which names tables and columns but never bound values, so no
/// secret or body can leak through them.
pub(super) fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    match &e {
        E::QueryReturnedNoRows => Error::NotFound,
        E::SqliteFailure(failure, msg) => match failure.code {
            ErrorCode::ConstraintViolation => {
                Error::Conflict(conflict_field(msg.as_deref().unwrap_or_default()))
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => Error::Corrupt(e.to_string()),
            _ => Error::Unavailable(e.to_string()),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(_)
        | E::InvalidColumnType(..) => Error::Corrupt(e.to_string()),
        _ => Error::Unavailable(e.to_string()),
    }
}

/// What an append answers for a failure: `Duplicate` and `NotFound` are
/// about the request; anything else (a `Corrupt` read, a constraint the
/// schema should never raise) means the store could not take the event, and
/// the sender should retry later (503), never be told it erred (500).
pub(super) fn append_error(e: Error) -> Error {
    match e {
        Error::Duplicate | Error::NotFound | Error::Unavailable(_) => e,
        Error::Conflict(_) | Error::Corrupt(_) => Error::Unavailable(e.to_string()),
    }
}

/// The field a unique constraint protects, from SQLite's message
/// (`UNIQUE constraint failed: buckets.tenant, buckets.name` → `name`).
fn conflict_field(msg: &str) -> &'static str {
    let last = msg.rsplit(['.', ' ']).next().unwrap_or_default();
    match last {
        "name" => "name",
        "key" => "key",
        "delivery_id" => "delivery_id",
        _ => "id",
    }
}

/// Stores a `u64` setting; values beyond `i64::MAX` (never valid settings)
/// saturate instead of failing the write.
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Unavailable(format!("cannot encode a column: {e}")))
}

fn col<T: FromSql>(row: &Row<'_>, i: usize) -> Result<T> {
    row.get(i).map_err(db_err)
}

fn parsed<T: FromStr>(row: &Row<'_>, i: usize) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = col(row, i)?;
    text.parse()
        .map_err(|e: T::Err| Error::Corrupt(e.to_string()))
}

fn parsed_opt<T: FromStr>(row: &Row<'_>, i: usize) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let text: Option<String> = col(row, i)?;
    text.map(|t| t.parse().map_err(|e: T::Err| Error::Corrupt(e.to_string())))
        .transpose()
}

fn json<T: DeserializeOwned>(row: &Row<'_>, i: usize) -> Result<T> {
    let text: String = col(row, i)?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("column {i}: {e}")))
}

fn json_opt<T: DeserializeOwned>(row: &Row<'_>, i: usize) -> Result<Option<T>> {
    let text: Option<String> = col(row, i)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| Error::Corrupt(format!("column {i}: {e}")))
}

fn integration(row: &Row<'_>, i: usize) -> Result<Option<IntegrationKind>> {
    let name: Option<String> = col(row, i)?;
    name.map(|n| {
        IntegrationKind::from_name(&n).ok_or_else(|| Error::Corrupt(format!("integration {n:?}")))
    })
    .transpose()
}

pub(super) fn scope_of(name: &str) -> Result<TokenScope> {
    [
        TokenScope::Admin,
        TokenScope::Tenant,
        TokenScope::Agent,
        TokenScope::Poll,
    ]
    .into_iter()
    .find(|s| s.name() == name)
    .ok_or_else(|| Error::Corrupt(format!("token scope {name:?}")))
}

pub(super) fn mode_name(mode: AgentMode) -> &'static str {
    match mode {
        AgentMode::Forward => "forward",
        AgentMode::Tunnel => "tunnel",
    }
}

fn mode_of(name: &str) -> Result<AgentMode> {
    match name {
        "forward" => Ok(AgentMode::Forward),
        "tunnel" => Ok(AgentMode::Tunnel),
        other => Err(Error::Corrupt(format!("agent mode {other:?}"))),
    }
}

pub(super) fn tenant(row: &Row<'_>) -> Result<TenantRecord> {
    Ok(TenantRecord {
        tenant: Tenant {
            id: parsed(row, 0)?,
            label: col(row, 1)?,
            enabled: col(row, 2)?,
            created_at: col(row, 3)?,
        },
        poll_secret_hash: col(row, 4)?,
    })
}

pub(super) fn bucket(row: &Row<'_>, keys: &Keyring) -> Result<Bucket> {
    let id: String = col(row, 0)?;
    let auth = sealed::open_bucket_auth(keys, &id, &col::<Vec<u8>>(row, 3)?)?;
    Ok(Bucket {
        auth: serde_json::from_slice(&auth)
            .map_err(|e| Error::Corrupt(format!("auth of bucket {id}: {e}")))?,
        id: id
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?,
        tenant: parsed(row, 1)?,
        name: col(row, 2)?,
        ephemeral: col(row, 4)?,
        retention_seconds: col(row, 5)?,
        catchup_seconds: col(row, 6)?,
        enabled: col(row, 7)?,
        created_at: col(row, 8)?,
    })
}

pub(super) fn input(row: &Row<'_>, keys: &Keyring) -> Result<Input> {
    let id: String = col(row, 0)?;
    let secrets = sealed::open_secrets(keys, &id, &col::<Vec<u8>>(row, 6)?)?;
    Ok(Input {
        id: id
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?,
        tenant: parsed(row, 1)?,
        bucket: parsed(row, 2)?,
        name: col(row, 3)?,
        integration: integration(row, 4)?,
        generic_hmac: json_opt(row, 5)?,
        secrets: secrets.into_iter().map(Secret::new).collect(),
        response: json(row, 7)?,
        enabled: col(row, 8)?,
        body_limit: col(row, 9)?,
        rate_limit: json_opt(row, 10)?,
        timestamp_tolerance_seconds: col(row, 11)?,
        created_at: col(row, 12)?,
        handshakes: col(row, 13)?,
        function_id: parsed_opt(row, 14)?,
    })
}

pub(super) fn output(row: &Row<'_>) -> Result<Output> {
    Ok(Output {
        id: parsed(row, 0)?,
        tenant: parsed(row, 1)?,
        bucket: parsed(row, 2)?,
        url: col(row, 3)?,
        internal: col(row, 4)?,
        timeout_ms: col(row, 5)?,
        headers: json(row, 6)?,
        retry: json(row, 7)?,
        created_at: col(row, 8)?,
        concurrency: col(row, 9)?,
        ordered: col(row, 10)?,
        function_id: parsed_opt(row, 11)?,
    })
}

pub(super) fn token(row: &Row<'_>) -> Result<Token> {
    let mode: Option<String> = col(row, 4)?;
    Ok(Token {
        key: parsed(row, 0)?,
        tenant: parsed(row, 1)?,
        scope: scope_of(&col::<String>(row, 2)?)?,
        buckets: json(row, 3)?,
        mode: mode.as_deref().map(mode_of).transpose()?,
        description: col(row, 5)?,
        secret_hash: Secret::new(col::<String>(row, 6)?),
        created_at: col(row, 7)?,
    })
}

/// Decodes an event and opens its payload. A payload that does not open is
/// reported on that event alone (`EventBody::Undecryptable`, logged with its
/// id), so one damaged record never hides the others of a page.
pub(super) fn event(row: &Row<'_>, keys: &Keyring) -> Result<Event> {
    let id: String = col(row, 0)?;
    let size: u64 = col(row, 9)?;
    let payload: Option<Vec<u8>> = col(row, 8)?;
    let (query, headers, body, forwarded) = match payload.map(|p| sealed::open_event(keys, &id, &p))
    {
        None => (None, None, EventBody::Omitted { size }, None),
        Some(Ok(p)) => (
            Some(p.query),
            Some(p.headers),
            EventBody::Stored(p.body),
            p.forwarded,
        ),
        Some(Err(err)) => {
            tracing::warn!(event_id = %id, %err, "event payload cannot be decrypted");
            (None, None, EventBody::Undecryptable { size }, None)
        }
    };
    Ok(Event {
        id: id
            .parse()
            .map_err(|e: model::IdError| Error::Corrupt(e.to_string()))?,
        tenant: parsed(row, 1)?,
        bucket: parsed(row, 2)?,
        input: parsed(row, 3)?,
        integration: integration(row, 4)?,
        received_at: col(row, 5)?,
        method: col(row, 6)?,
        path: col(row, 7)?,
        query,
        headers,
        body,
        client_ip: col(row, 10)?,
        delivery_id: col(row, 11)?,
        event_type: col(row, 12)?,
        event_count: col(row, 13)?,
        verified: col(row, 14)?,
        marks: json_opt(row, 15)?.unwrap_or_default(),
        forwarded,
    })
}

pub(super) fn delivery(row: &Row<'_>) -> Result<Delivery> {
    let state: String = col(row, 3)?;
    Ok(Delivery {
        event: parsed(row, 0)?,
        output: parsed(row, 1)?,
        group: col(row, 2)?,
        state: DeliveryState::from_name(&state)
            .ok_or_else(|| Error::Corrupt(format!("delivery state {state:?}")))?,
        attempts: json(row, 4)?,
        updated_at: col(row, 5)?,
    })
}

/// Runs a prepared query and decodes every row.
pub(super) fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

// ---- query runners shared by the SQL modules ----

/// Runs a write and turns "no row matched" into `NotFound`.
pub(super) fn changed(conn: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    let n = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(db_err)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(n)
}

pub(super) fn exists(conn: &Connection, sql: &str, params: impl Params) -> Result<()> {
    let found = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |_| Ok(())).optional())
        .map_err(db_err)?;
    found.ok_or(Error::NotFound)
}

pub(super) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<T> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(row) => decode(row),
        None => Err(Error::NotFound),
    }
}

pub(super) fn many<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query(params).map_err(db_err)?;
    collect(rows, decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_fields_come_from_the_constraint_message() {
        let cases = [
            (
                "UNIQUE constraint failed: buckets.tenant, buckets.name",
                "name",
            ),
            (
                "UNIQUE constraint failed: inputs.tenant, inputs.name",
                "name",
            ),
            ("UNIQUE constraint failed: tokens.key", "key"),
            ("UNIQUE constraint failed: tenants.id", "id"),
            ("", "id"),
        ];
        for (msg, field) in cases {
            assert_eq!(conflict_field(msg), field, "{msg}");
        }
    }

    #[test]
    fn an_append_fails_only_duplicate_not_found_or_unavailable() {
        let cases = [
            (Error::Duplicate, "Duplicate"),
            (Error::NotFound, "NotFound"),
            (Error::Unavailable("disk full".into()), "Unavailable"),
            (Error::Conflict("id"), "Unavailable"),
            (Error::Corrupt("bad page".into()), "Unavailable"),
        ];
        for (error, expected) in cases {
            let shown = format!("{error:?}");
            let mapped = format!("{:?}", append_error(error));
            assert!(mapped.starts_with(expected), "{shown} became {mapped}");
        }
    }

    #[test]
    fn huge_settings_saturate() {
        assert_eq!(int(u64::MAX), i64::MAX);
        assert_eq!(int(7), 7);
    }
}
