//! Monthly history from the forever-kept monthly rollup.

use dvmdash_core::event::Id32;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Month {
    /// First day of the month, days since 1970-01-01.
    pub month: u16,
    pub requests: u64,
    pub results: u64,
    pub feedback: u64,
    pub dvms: u64,
    pub customers: u64,
    pub kinds: u64,
}

pub async fn months(ch: &clickhouse::Client) -> clickhouse::error::Result<Vec<Month>> {
    ch.query(
        "SELECT month, sumIf(events, role = 'request') AS requests, sumIf(events, role = 'result') AS results, \
                sumIf(events, role = 'feedback') AS feedback, \
                uniqExactIf(pubkey, role IN ('result', 'feedback')) AS dvms, \
                uniqExactIf(pubkey, role = 'request') AS customers, \
                uniqExactIf(job_kind, role = 'request') AS kinds \
         FROM stats_monthly WHERE role IN ('request', 'result', 'feedback') \
         GROUP BY month ORDER BY month",
    )
    .fetch_all()
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct TopDvm {
    pub month: u16,
    pub pubkey: Id32,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct TopKind {
    pub month: u16,
    pub job_kind: u16,
    pub count: u64,
}

/// The 10 DVMs with the most results and the 10 kinds with the most requests, per month.
pub async fn tops(ch: &clickhouse::Client) -> clickhouse::error::Result<(Vec<TopDvm>, Vec<TopKind>)> {
    let dvms = ch
        .query(
            "SELECT month, pubkey, sum(events) AS count FROM stats_monthly WHERE role = 'result' \
             GROUP BY month, pubkey ORDER BY month, count DESC, pubkey LIMIT 10 BY month",
        )
        .fetch_all::<TopDvm>();
    let kinds = ch
        .query(
            "SELECT month, job_kind, sum(events) AS count FROM stats_monthly WHERE role = 'request' \
             GROUP BY month, job_kind ORDER BY month, count DESC, job_kind LIMIT 10 BY month",
        )
        .fetch_all::<TopKind>();
    tokio::try_join!(dvms, kinds)
}
