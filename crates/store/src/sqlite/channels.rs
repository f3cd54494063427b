//! SQL of channels, and [`Channels`] for the embedded store. The digest of
//! the capability is `UNIQUE` across the table: it is a public address.

use async_trait::async_trait;
use model::{BucketId, Channel, ChannelId, EventId, TenantId};
use rusqlite::{params, Row};

use super::buckets::bucket_exists;
use super::rows::{changed, db_err, many, one};
use super::SqliteStore;
use crate::{Channels, Error, Result};

const COLS: &str = "id, tenant, bucket, cap_sha256, cursor, created_at";

fn row(row: &Row<'_>) -> Result<Channel> {
    let text = |i: usize| row.get::<_, String>(i).map_err(db_err);
    let corrupt = |e: model::IdError| Error::Corrupt(e.to_string());
    let cursor: Option<String> = row.get(4).map_err(db_err)?;
    Ok(Channel {
        id: text(0)?.parse().map_err(corrupt)?,
        tenant: text(1)?.parse().map_err(corrupt)?,
        bucket: text(2)?.parse().map_err(corrupt)?,
        capability_sha256: text(3)?,
        cursor: cursor.map(|c| c.parse()).transpose().map_err(corrupt)?,
        created_at: row.get(5).map_err(db_err)?,
    })
}

#[async_trait]
impl Channels for SqliteStore {
    async fn create_channel(&self, channel: &Channel) -> Result<()> {
        let c = channel.clone();
        self.write(move |conn| {
            bucket_exists(conn, &c.tenant, &c.bucket)?;
            conn.prepare_cached(
                "INSERT INTO channels (id, tenant, bucket, cap_sha256, cursor, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.id.as_str(),
                    c.tenant.as_str(),
                    c.bucket.as_str(),
                    c.capability_sha256,
                    c.cursor.map(|e| e.to_string()),
                    c.created_at,
                ])
            })
            .map_err(db_err)
            .map(drop)
        })
        .await
    }

    async fn list_channels(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Channel>> {
        let (tenant, bucket) = (tenant.clone(), bucket.clone());
        self.read(move |c| {
            let sql = format!(
                "SELECT {COLS} FROM channels WHERE tenant = ?1 AND bucket = ?2 ORDER BY created_at, id"
            );
            many(c, &sql, [tenant.as_str(), bucket.as_str()], row)
        })
        .await
    }

    async fn channel_by_capability(&self, sha256_hex: &str) -> Result<Channel> {
        let digest = sha256_hex.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {COLS} FROM channels WHERE cap_sha256 = ?1");
            one(c, &sql, [digest.as_str()], row)
        })
        .await
    }

    async fn advance_channel_cursor(
        &self,
        tenant: &TenantId,
        id: &ChannelId,
        cursor: EventId,
    ) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        // Event ids are fixed-width ULIDs with one prefix, so text order
        // is id order.
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE channels SET cursor = ?3
                 WHERE tenant = ?1 AND id = ?2 AND (cursor IS NULL OR cursor < ?3)",
            )
            .and_then(|mut s| s.execute([tenant.as_str(), id.as_str(), &cursor.to_string()]))
            .map_err(db_err)
            .map(drop)
        })
        .await
    }

    async fn delete_channel(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        id: &ChannelId,
    ) -> Result<()> {
        let (tenant, bucket, id) = (tenant.clone(), bucket.clone(), id.clone());
        self.write(move |conn| {
            changed(
                conn,
                "DELETE FROM channels WHERE tenant = ?1 AND bucket = ?2 AND id = ?3",
                [tenant.as_str(), bucket.as_str(), id.as_str()],
            )
            .map(drop)
        })
        .await
    }
}
