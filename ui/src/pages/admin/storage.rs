//! The console's ClickHouse panel: each table's rows, parts, size and compression; the raw events'
//! days against their TTL; how far each rollup trails the newest raw event; the migrations.

use serde::Deserialize;
use sycamore::prelude::*;

use crate::format::{bytes, thousands};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StorageView {
    #[serde(default)]
    pub tables: Vec<Table>,
    pub raw_events: RawEvents,
    #[serde(default)]
    pub rollups: Vec<Rollup>,
    #[serde(default)]
    pub migrations: Vec<Migration>,
    #[serde(default)]
    pub pending_migrations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Table {
    pub table: String,
    pub engine: String,
    pub rows: u64,
    pub parts: u64,
    pub bytes_on_disk: u64,
    pub compression_ratio: Option<f64>,
    pub ttl_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawEvents {
    pub rows: u64,
    pub oldest_day: Option<String>,
    pub newest_day: Option<String>,
    pub ttl_days: Option<u32>,
    pub beyond_ttl: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rollup {
    pub table: String,
    pub bucket: String,
    pub newest_bucket: Option<String>,
    pub behind_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub applied_at: String,
}

pub fn storage_panel(s: &StorageView) -> View {
    let tables: Vec<View> = s
        .tables
        .iter()
        .map(|t| {
            let key = t.table.clone();
            let (name, engine) = (t.table.clone(), t.engine.clone());
            let ratio = t
                .compression_ratio
                .map_or_else(|| "–".to_owned(), |r| format!("{r:.1}×"));
            let ttl = t.ttl_days.map_or_else(|| "–".to_owned(), |d| format!("{d} d"));
            let (rows, parts, disk) = (thousands(t.rows), thousands(t.parts), bytes(t.bytes_on_disk));
            view! {
                tr(data-table=key) {
                    td { code { (name) } }
                    td(class="muted") { (engine) }
                    td(class="num", data-col="rows") { (rows) }
                    td(class="num", data-col="parts") { (parts) }
                    td(class="num") { (disk) }
                    td(class="num") { (ratio) }
                    td(class="num") { (ttl) }
                }
            }
        })
        .collect();
    let r = &s.raw_events;
    let raw_line = match (&r.oldest_day, &r.newest_day) {
        (Some(old), Some(new)) => format!(
            "Raw events: {} rows received from {old} to {new} (UTC); kept {}.",
            thousands(r.rows),
            r.ttl_days
                .map_or_else(|| "without a TTL".to_owned(), |d| format!("{d} days"))
        ),
        _ => "Raw events: none yet.".to_owned(),
    };
    let ttl_warning = if r.beyond_ttl {
        view! { p(class="form-error", role="alert", data-ttl-warning="") {
            "The oldest raw events are older than the TTL allows: TTL deletes are not running (check merges)."
        } }
    } else {
        view! {}
    };
    let rollups: Vec<View> = s
        .rollups
        .iter()
        .map(|v| {
            let key = v.table.clone();
            let name = v.table.clone();
            let newest = v.newest_bucket.as_deref().map_or_else(|| "empty".to_owned(), crate::format::utc);
            let behind = match v.behind_secs {
                None => "no lag to measure".to_owned(),
                Some(0) => "up to date".to_owned(),
                Some(secs) => format!("{} behind", crate::format::duration(Some(secs as f64))),
            };
            let per = format!("per {}", v.bucket);
            view! {
                li(data-rollup=key) {
                    code { (name) } " (" (per) "): newest " (newest) " · " span(data-col="behind") { (behind) }
                }
            }
        })
        .collect();
    let migrations = s
        .migrations
        .iter()
        .map(|m| format!("{} ({})", m.name, crate::format::utc(&m.applied_at)))
        .collect::<Vec<_>>();
    let applied = match s.migrations.last() {
        Some(m) => format!(
            "{} applied; the newest, {}, on {}.",
            migrations.len(),
            m.name,
            crate::format::utc(&m.applied_at)
        ),
        None => "None applied.".to_owned(),
    };
    let newest_migration = s.migrations.last().map(|m| m.name.clone()).unwrap_or_default();
    let pending = if s.pending_migrations.is_empty() {
        view! {}
    } else {
        let text = format!(
            "Not applied yet: {}. Run dvmdash migrate.",
            s.pending_migrations.join(", ")
        );
        view! { p(class="form-error", role="alert", data-pending-migrations="") { (text) } }
    };
    let all_migrations = migrations.join(", ");
    view! {
        section(class="panel", data-admin-clickhouse="") {
            h2 { "ClickHouse" }
            div(class="table-wrap") { table(class="data") {
                thead { tr {
                    th(scope="col") { "Table" }
                    th(scope="col") { "Engine" }
                    th(scope="col", class="num") { "Rows" }
                    th(scope="col", class="num") { "Parts" }
                    th(scope="col", class="num") { "On disk" }
                    th(scope="col", class="num") { "Compression" }
                    th(scope="col", class="num") { "TTL" }
                } }
                tbody { (tables) }
            } }
            p(class="muted", data-raw-extent="") { (raw_line) }
            (ttl_warning)
            h3 { "Rollups against the newest raw event" }
            ul(class="plain") { (rollups) }
            h3 { "Migrations" }
            p(class="muted", data-migrations=newest_migration, title=all_migrations) { (applied) }
            (pending)
        }
    }
}
