//! ClickHouse's own health for the admin console, read from its system tables and dvmdash's
//! tables: size per table, the raw events' days against their TTL, how far each rollup trails the
//! newest raw event, and the migrations applied. Every query names the current database only.

use serde::Deserialize;

/// Active parts of one table.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct TableParts {
    pub table: String,
    pub rows: u64,
    pub parts: u64,
    pub bytes_on_disk: u64,
    pub compressed: u64,
    pub uncompressed: u64,
}

pub async fn table_parts(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<TableParts>> {
    ch.query(
        "SELECT table, sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes_on_disk, \
           sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed \
         FROM system.parts WHERE database = currentDatabase() AND active \
         GROUP BY table ORDER BY table",
    )
    .fetch_all()
    .await
}

/// A table or view of the database with its engine description (which holds its TTL).
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub engine: String,
    pub engine_full: String,
}

pub async fn tables(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<TableInfo>> {
    ch.query(
        "SELECT name, engine, engine_full FROM system.tables \
         WHERE database = currentDatabase() ORDER BY name",
    )
    .fetch_all()
    .await
}

/// The days a TTL clause keeps rows (`... + toIntervalDay(N)`), as ClickHouse prints it in
/// `engine_full`; `None` when the table has no day-based TTL.
pub fn ttl_days(engine_full: &str) -> Option<u32> {
    let (_, after) = engine_full.split_once(" TTL ")?;
    let (_, days) = after.split_once("toIntervalDay(")?;
    days.split(')').next()?.trim().parse().ok()
}

/// The raw events' extent: by ingest time (what the TTL follows) and the newest creation time not
/// in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct RawExtent {
    pub rows: u64,
    pub oldest_received: u32,
    pub newest_received: u32,
    pub newest_created: u32,
}

pub async fn raw_extent(ch: &clickhouse::Client) -> clickhouse::error::Result<RawExtent> {
    ch.query(
        "SELECT count() AS rows, \
           toUInt32(toUnixTimestamp(min(toDateTime(received_at)))) AS oldest_received, \
           toUInt32(toUnixTimestamp(max(toDateTime(received_at)))) AS newest_received, \
           toUInt32(toUnixTimestamp(maxIf(created_at, created_at <= now()))) AS newest_created \
         FROM events_raw",
    )
    .fetch_one()
    .await
}

/// Tables with a time bucket column (`hour` or `month`): the rollups whose freshness can be read.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct BucketColumn {
    pub table: String,
    pub column: String,
}

pub async fn bucket_columns(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<BucketColumn>> {
    ch.query(
        "SELECT table, name AS column FROM system.columns \
         WHERE database = currentDatabase() AND name IN ('hour', 'month') \
           AND (type LIKE 'DateTime%' OR type LIKE 'Date%') \
           AND table IN (SELECT name FROM system.tables \
                         WHERE database = currentDatabase() AND engine LIKE '%MergeTree') \
         ORDER BY table",
    )
    .fetch_all()
    .await
}

/// The newest bucket in `table` (0 when empty). `table` and `column` come from
/// [`bucket_columns`] and are checked to be plain identifiers before they reach the SQL.
pub async fn newest_bucket(
    ch: &clickhouse::Client,
    table: &str,
    column: &str,
) -> clickhouse::error::Result<u32> {
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain(table) || !plain(column) {
        return Ok(0);
    }
    ch.query(&format!(
        "SELECT toUInt32(toUnixTimestamp(toDateTime(max(`{column}`)))) FROM `{table}`"
    ))
    .fetch_one()
    .await
}

/// One applied migration.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub applied_at: u32,
}

pub async fn migrations(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<Migration>> {
    ch.query(
        "SELECT version, name, toUInt32(toUnixTimestamp(toDateTime(applied_at))) AS applied_at \
         FROM schema_migrations ORDER BY version",
    )
    .fetch_all()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_days_reads_the_engine_description() {
        let raw = "ReplacingMergeTree PARTITION BY toDate(received_at) ORDER BY (kind, event_id) \
                   TTL toDateTime(received_at) + toIntervalDay(30) SETTINGS ttl_only_drop_parts = 1";
        assert_eq!(ttl_days(raw), Some(30));
        assert_eq!(
            ttl_days("AggregatingMergeTree ORDER BY x TTL hour + toIntervalDay(400)"),
            Some(400)
        );
        assert_eq!(
            ttl_days("MergeTree ORDER BY version SETTINGS index_granularity = 8192"),
            None
        );
        assert_eq!(ttl_days("MergeTree TTL d + toIntervalMonth(1)"), None);
        assert_eq!(ttl_days("MergeTree TTL d + toIntervalDay(x)"), None);
    }
}
