//! Counts in a window and time series, from the hourly rollups plus the partial first hour of raw
//! events.

use dvmdash_core::event::Id32;
use serde::Deserialize;

use super::{JOB_KIND, Window, pubkey_param};

/// Events of one author, role and job kind in the window.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Fact {
    pub role: String,
    pub job_kind: u16,
    pub pubkey: Id32,
    pub events: u64,
}

/// Every (role, job kind, author) with events in the window, for requests, results and feedback.
pub async fn facts(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Fact>> {
    let sql = format!(
        "SELECT role, job_kind, pubkey, sum(events) AS events FROM ( \
           SELECT role, job_kind, pubkey, events FROM stats_hourly \
           WHERE hour >= toDateTime({{edge:UInt32}}) AND role IN ('request', 'result', 'feedback') \
           UNION ALL \
           SELECT role, {JOB_KIND} AS job_kind, pubkey, count() AS events FROM events_raw \
           WHERE created_at >= toDateTime({{start:UInt32}}) AND created_at < toDateTime({{edge:UInt32}}) \
             AND role IN ('request', 'result', 'feedback') \
           GROUP BY role, job_kind, pubkey \
         ) GROUP BY role, job_kind, pubkey"
    );
    ch.query(&sql)
        .param("edge", w.edge)
        .param("start", w.start)
        .fetch_all()
        .await
}

/// One time-series bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Bucket {
    pub bucket: u32,
    pub requests: u64,
    pub results: u64,
    pub feedback: u64,
    pub customers: u64,
    pub dvms: u64,
}

/// Which events a series counts.
#[derive(Debug, Clone, Copy)]
pub enum SeriesFilter {
    All,
    Dvm(Id32),
    Kind(u16),
}

/// Buckets of the window's step from its first bucket on. Steps of an hour or more read the hourly
/// rollup (buckets are whole hours); the 5-minute buckets of the 1h window read raw events.
pub async fn series(
    ch: &clickhouse::Client,
    w: &Window,
    filter: SeriesFilter,
) -> clickhouse::error::Result<Vec<Bucket>> {
    let step = w.range.step_seconds() as u32;
    let hourly = step >= 3600;
    let (table, time, kind_col, count) = if hourly {
        ("stats_hourly", "hour", "job_kind".to_owned(), "events")
    } else {
        ("events_raw", "created_at", JOB_KIND.to_owned(), "1")
    };
    let filter_sql = match filter {
        SeriesFilter::All => String::new(),
        SeriesFilter::Dvm(_) => format!(" AND pubkey = {}", pubkey_param("pk")),
        SeriesFilter::Kind(_) => format!(" AND {kind_col} = {{kind:UInt16}}"),
    };
    let sql = format!(
        "SELECT toUInt32(intDiv(toUInt32({time}), {{step:UInt32}}) * {{step:UInt32}}) AS bucket, \
                sumIf({count}, role = 'request') AS requests, \
                sumIf({count}, role = 'result') AS results, \
                sumIf({count}, role = 'feedback') AS feedback, \
                uniqExactIf(pubkey, role = 'request') AS customers, \
                uniqExactIf(pubkey, role IN ('result', 'feedback')) AS dvms \
         FROM {table} \
         WHERE {time} >= toDateTime({{first:UInt32}}) AND role IN ('request', 'result', 'feedback'){filter_sql} \
         GROUP BY bucket ORDER BY bucket"
    );
    let mut q = ch
        .query(&sql)
        .param("step", step)
        .param("first", w.first_bucket());
    match filter {
        SeriesFilter::All => {}
        SeriesFilter::Dvm(pk) => q = q.param("pk", hex::encode(pk)),
        SeriesFilter::Kind(k) => q = q.param("kind", k),
    }
    q.fetch_all().await
}

/// Requests in the window naming each DVM in a `p` tag.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Directed {
    pub target: Id32,
    pub requests: u64,
}

pub async fn directed(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Directed>> {
    ch.query(
        "SELECT target, sum(requests) AS requests FROM ( \
           SELECT target, requests FROM directed_hourly WHERE hour >= toDateTime({edge:UInt32}) \
           UNION ALL \
           SELECT arrayJoin(targets) AS target, count() AS requests FROM events_raw \
           WHERE role = 'request' AND notEmpty(targets) \
             AND created_at >= toDateTime({start:UInt32}) AND created_at < toDateTime({edge:UInt32}) \
           GROUP BY target \
         ) GROUP BY target",
    )
    .param("edge", w.edge)
    .param("start", w.start)
    .fetch_all()
    .await
}

/// Distinct requests each DVM answered (result or feedback) in the window.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Answered {
    pub pubkey: Id32,
    pub jobs: u64,
}

pub async fn jobs_answered(ch: &clickhouse::Client, w: &Window) -> clickhouse::error::Result<Vec<Answered>> {
    ch.query(
        "SELECT pubkey, uniqExact(request_id) AS jobs FROM events_raw \
         WHERE role IN ('result', 'feedback') AND created_at >= toDateTime({start:UInt32}) AND notEmpty(request_id) \
         GROUP BY pubkey",
    )
    .param("start", w.start)
    .fetch_all()
    .await
}
