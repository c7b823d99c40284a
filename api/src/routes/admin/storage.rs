//! `/api/admin/clickhouse`: the health of dvmdash's tables, read from ClickHouse's system tables
//! (`crate::queries::storage`). Read-only: no query box.

use axum::Json;
use axum::extract::State;
use dvmdash_core::dto::rfc3339;
use serde::Serialize;

use super::AdminErrors;
use crate::AppState;
use crate::error::ApiResult;
use crate::queries::storage;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TableView {
    pub table: String,
    pub engine: String,
    /// Rows in active parts (a replacing table may still hold versions a merge will fold).
    pub rows: u64,
    pub parts: u64,
    pub bytes_on_disk: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    /// Uncompressed over compressed bytes; absent for an empty table.
    pub compression_ratio: Option<f64>,
    /// Days its TTL keeps rows, when it has one.
    pub ttl_days: Option<u32>,
}

/// The raw events against their TTL, by ingest time (what the TTL follows).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RawEventsView {
    pub rows: u64,
    /// UTC days, `YYYY-MM-DD`; absent when there are none.
    pub oldest_day: Option<String>,
    pub newest_day: Option<String>,
    pub ttl_days: Option<u32>,
    /// Whether the oldest day is older than the TTL allows by more than a day: TTL deletes run
    /// with merges, so a day of slack is normal; more means they are not running.
    pub beyond_ttl: bool,
}

/// How far a rollup trails the raw events.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RollupView {
    pub table: String,
    /// `hour` or `month`.
    pub bucket: String,
    /// RFC 3339 start of its newest bucket; absent when empty.
    pub newest_bucket: Option<String>,
    /// RFC 3339 creation time of the newest raw event (not in the future).
    pub newest_raw_event: Option<String>,
    /// Seconds from the end of the rollup's newest bucket to the newest raw event; 0 when the
    /// rollup holds the newest event's bucket; absent when either is empty. A rollup fed by some
    /// events only (requests naming a DVM) can trail, or be empty, without a fault.
    pub behind_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MigrationView {
    pub version: u32,
    pub name: String,
    /// RFC 3339.
    pub applied_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StorageView {
    pub tables: Vec<TableView>,
    pub raw_events: RawEventsView,
    pub rollups: Vec<RollupView>,
    pub migrations: Vec<MigrationView>,
    /// Migrations this build carries that the database has not applied (`dvmdash migrate`).
    pub pending_migrations: Vec<String>,
}

/// The start of the UTC month holding `secs`.
fn month_start(secs: u64) -> u64 {
    let day_of_month: u64 = rfc3339(secs)[8..10].parse().unwrap_or(1);
    secs / 86_400 * 86_400 - (day_of_month - 1) * 86_400
}

/// Seconds from the end of the bucket starting at `newest` to `raw`.
fn behind(bucket: &str, newest: u64, raw: u64) -> u64 {
    let raw_bucket = if bucket == "month" {
        month_start(raw)
    } else {
        raw / 3600 * 3600
    };
    if raw_bucket <= newest {
        return 0;
    }
    let end = if bucket == "month" {
        month_start(newest + 32 * 86_400)
    } else {
        newest + 3600
    };
    raw.saturating_sub(end)
}

/// `GET /api/admin/clickhouse`
#[utoipa::path(get, path = "/api/admin/clickhouse", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = StorageView), AdminErrors))]
pub async fn clickhouse(State(state): State<AppState>) -> ApiResult<Json<StorageView>> {
    let ch = &state.clickhouse;
    let parts = storage::table_parts(ch).await?;
    let tables = storage::tables(ch).await?;
    let raw = storage::raw_extent(ch).await?;
    let ttl = |name: &str| {
        tables
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| storage::ttl_days(&t.engine_full))
    };
    let table_views = tables
        .iter()
        .filter(|t| !t.engine.contains("View"))
        .map(|t| {
            let p = parts.iter().find(|p| p.table == t.name);
            let (rows, n, disk, comp, uncomp) = p.map_or((0, 0, 0, 0, 0), |p| {
                (p.rows, p.parts, p.bytes_on_disk, p.compressed, p.uncompressed)
            });
            TableView {
                table: t.name.clone(),
                engine: t.engine.clone(),
                rows,
                parts: n,
                bytes_on_disk: disk,
                compressed_bytes: comp,
                uncompressed_bytes: uncomp,
                compression_ratio: (comp > 0).then(|| uncomp as f64 / comp as f64),
                ttl_days: storage::ttl_days(&t.engine_full),
            }
        })
        .collect();
    let raw_ttl = ttl(dvmdash_core::store::EVENTS_RAW);
    let day = |s: u32| (raw.rows > 0).then(|| rfc3339(u64::from(s))[..10].to_owned());
    let now = dvmdash_core::telemetry::now_secs();
    let raw_events = RawEventsView {
        rows: raw.rows,
        oldest_day: day(raw.oldest_received),
        newest_day: day(raw.newest_received),
        ttl_days: raw_ttl,
        beyond_ttl: raw.rows > 0
            && raw_ttl.is_some_and(|d| u64::from(raw.oldest_received) + (u64::from(d) + 1) * 86_400 < now),
    };
    let mut rollups = Vec::new();
    for b in storage::bucket_columns(ch).await? {
        let newest = storage::newest_bucket(ch, &b.table, &b.column).await?;
        let raw_newest = u64::from(raw.newest_created);
        rollups.push(RollupView {
            newest_bucket: (newest > 0).then(|| rfc3339(u64::from(newest))),
            newest_raw_event: (raw_newest > 0).then(|| rfc3339(raw_newest)),
            behind_secs: (raw_newest > 0 && newest > 0)
                .then(|| behind(&b.column, u64::from(newest), raw_newest)),
            table: b.table,
            bucket: b.column,
        });
    }
    let migrations = storage::migrations(ch).await?;
    let pending_migrations = dvmdash_core::store::MIGRATIONS
        .iter()
        .filter(|(v, _, _)| !migrations.iter().any(|m| m.version == *v))
        .map(|(_, name, _)| (*name).to_owned())
        .collect();
    Ok(Json(StorageView {
        tables: table_views,
        raw_events,
        rollups,
        migrations: migrations
            .into_iter()
            .map(|m| MigrationView {
                version: m.version,
                name: m.name,
                applied_at: rfc3339(u64::from(m.applied_at)),
            })
            .collect(),
        pending_migrations,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_measured_from_the_end_of_the_newest_bucket() {
        let hour = 1_796_385_600; // 2026-12-04T12:00:00Z
        assert_eq!(behind("hour", hour, hour + 1_800), 0, "same hour");
        assert_eq!(behind("hour", hour, hour + 3_600 + 60), 60);
        assert_eq!(behind("hour", hour + 7_200, hour), 0, "rollup ahead");
        let dec = 1_796_083_200; // 2026-12-01T00:00:00Z
        assert_eq!(month_start(hour), dec);
        assert_eq!(behind("month", dec, hour), 0, "same month");
        let nov = 1_793_491_200; // 2026-11-01T00:00:00Z
        assert_eq!(behind("month", nov, hour), hour - dec);
    }
}
