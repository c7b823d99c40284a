//! Job statistics from the job ledger (`clickhouse/schema/0009_job_ledger.sql`, maintained by the
//! ingester's finalizer, `dvmdash_core::job_ledger`): the window's whole request hours from the
//! hourly tables, its partial first hour from the ledger's rows, aggregated by the same SQL the
//! finalizer fills the hourly tables with. Each function answers exactly what its raw counterpart
//! in [`super::jobs`] answers for the same window, as of the ledger's clock (the window's `now`):
//! whether a quiet job has timed out is decided here, from the request times the tables keep.

use dvmdash_core::event::Id32;
use dvmdash_core::job_ledger as jl;
use serde::Deserialize;

use super::Window;
use super::jobs::{
    CompetitionRow, DirectedRow, ErrorReason, Grouping, Histogram, JobTimeouts, KindReachRow, PerformanceRow,
};

/// The ledger rows of the window's partial first hour (none when the window starts on the hour).
fn boundary(w: &Window) -> String {
    if w.start < w.edge {
        format!(
            "hour = toDateTime({}) AND requested_at >= {}",
            w.edge - 3600,
            w.start
        )
    } else {
        "0".to_owned()
    }
}

/// `x` (a request time) has passed the timeout of the request kind in column `kind`.
fn timed_out(t: &JobTimeouts, kind: &str) -> String {
    format!("toInt64({{now:UInt32}}) - toInt64(x) >= {}", t.sql(kind))
}

fn query(ch: &clickhouse::Client, w: &Window, sql: &str) -> clickhouse::query::Query {
    w.query(ch, sql).param("edge", w.edge)
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
struct PerfAgg {
    dvm: Id32,
    kind: u16,
    jobs: u64,
    fb_count: u64,
    fb_keys: Vec<u32>,
    fb_counts: Vec<u64>,
    res_count: u64,
    res_keys: Vec<u32>,
    res_counts: Vec<u64>,
    success: u64,
    partial: u64,
    error: u64,
    cancelled: u64,
    payment_required: u64,
    stalled: u64,
    pending: u64,
}

/// `quantilesExact(0.5, 0.9, 0.99)` of a histogram (value, how often, ascending by value): the
/// value at sorted position `level * n`, as ClickHouse picks it; zeros when empty.
pub fn exact_quantiles(values: &[u32], counts: &[u64]) -> Vec<i64> {
    let n: u64 = counts.iter().sum();
    [0.5f64, 0.9, 0.99]
        .iter()
        .map(|&level| {
            if n == 0 {
                return 0;
            }
            let pos = ((level * n as f64) as u64).min(n - 1);
            let mut seen = 0u64;
            for (v, c) in values.iter().zip(counts) {
                seen += c;
                if seen > pos {
                    return i64::from(*v);
                }
            }
            values.last().map_or(0, |v| i64::from(*v))
        })
        .collect()
}

pub async fn performance(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
    g: Grouping,
) -> clickhouse::error::Result<Vec<PerformanceRow>> {
    let (dvm, kind, group) = g.columns("ud", "uk");
    let final_ = timed_out(t, "uk");
    let sql = format!(
        "SELECT {dvm} AS dvm, {kind} AS kind, sum(ujobs) AS jobs, sum(ufb) AS fb_count, \
                tupleElement(sumMap(ufbl, ufbn), 1) AS fb_keys, tupleElement(sumMap(ufbl, ufbn), 2) AS fb_counts, \
                sum(ures) AS res_count, \
                tupleElement(sumMap(uresl, uresn), 1) AS res_keys, tupleElement(sumMap(uresl, uresn), 2) AS res_counts, \
                sum(us) AS success, sum(up) AS partial, sum(ue) AS error, sum(uc) AS cancelled, \
                sum(arrayCount(x -> {final_}, upr)) AS payment_required, \
                sum(arrayCount(x -> {final_}, uproc)) AS stalled, \
                toUInt64(sum(length(upr) + length(uproc)) - payment_required - stalled) AS pending \
         FROM ( \
           SELECT hour, kind AS uk, dvm AS ud, jobs AS ujobs, fb_count AS ufb, fb_lat AS ufbl, fb_n AS ufbn, \
                  res_count AS ures, res_lat AS uresl, res_n AS uresn, success AS us, partial AS up, error AS ue, \
                  cancelled AS uc, quiet_pr AS upr, quiet_proc AS uproc \
           FROM job_perf_hourly FINAL WHERE hour >= toDateTime({{edge:UInt32}}) \
           UNION ALL {} \
         ) GROUP BY {group}",
        jl::perf_rows(&boundary(w), true)
    );
    let rows: Vec<PerfAgg> = query(ch, w, &sql).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|r| PerformanceRow {
            dvm: r.dvm,
            kind: r.kind,
            jobs: r.jobs,
            fb_count: r.fb_count,
            fb_q: exact_quantiles(&r.fb_keys, &r.fb_counts),
            res_count: r.res_count,
            res_q: exact_quantiles(&r.res_keys, &r.res_counts),
            success: r.success,
            partial: r.partial,
            error: r.error,
            cancelled: r.cancelled,
            payment_required: r.payment_required,
            stalled: r.stalled,
            pending: r.pending,
        })
        .collect())
}

/// The 5 most frequent error reasons per group.
pub async fn top_errors(
    ch: &clickhouse::Client,
    w: &Window,
    g: Grouping,
) -> clickhouse::error::Result<Vec<ErrorReason>> {
    let (dvm, kind, group) = g.columns("ud", "uk");
    let sql = format!(
        "SELECT {dvm} AS dvm, {kind} AS kind, ur AS reason, sum(un) AS count \
         FROM ( \
           SELECT hour, kind AS uk, dvm AS ud, reason AS ur, events AS un \
           FROM job_errors_hourly FINAL WHERE hour >= toDateTime({{edge:UInt32}}) \
           UNION ALL {} \
         ) \
         GROUP BY {group}, reason \
         ORDER BY dvm, kind, count DESC, reason \
         LIMIT 5 BY dvm, kind",
        jl::error_rows(&boundary(w), true)
    );
    query(ch, w, &sql).fetch_all().await
}

/// The per-kind rows of the window, renamed for the outer aggregates.
fn kind_union(w: &Window) -> String {
    format!(
        "SELECT hour, kind AS uk, requested AS urq, unanswered AS uun, directed AS udir, open AS uopen, \
                one AS u1, two AS u2, more AS u3 \
         FROM job_kind_hourly FINAL WHERE hour >= toDateTime({{edge:UInt32}}) \
         UNION ALL {}",
        jl::kind_rows(&boundary(w), true)
    )
}

pub async fn kind_reach(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
) -> clickhouse::error::Result<Vec<KindReachRow>> {
    let final_ = timed_out(t, "uk");
    let sql = format!(
        "SELECT uk AS kind, sum(length(urq)) AS requests, sum(arrayCount(x -> {final_}, urq)) AS final_requests, \
                sum(arrayCount(x -> {final_}, uun)) AS unanswered, sum(udir) AS directed, sum(uopen) AS open \
         FROM ({}) GROUP BY kind",
        kind_union(w)
    );
    query(ch, w, &sql).fetch_all().await
}

pub async fn directed_reach(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
) -> clickhouse::error::Result<Vec<DirectedRow>> {
    let final_ = timed_out(t, "uk");
    let sql = format!(
        "SELECT ut AS target, sum(length(udr)) AS directed, sum(arrayCount(x -> {final_}, udr)) AS final_directed, \
                sum(arrayCount(x -> {final_}, ums)) AS missed \
         FROM ( \
           SELECT hour, target AS ut, kind AS uk, directed AS udr, missed AS ums \
           FROM job_directed_hourly FINAL WHERE hour >= toDateTime({{edge:UInt32}}) \
           UNION ALL {} \
         ) GROUP BY target",
        jl::directed_rows(&boundary(w), true)
    );
    query(ch, w, &sql).fetch_all().await
}

pub async fn competition(
    ch: &clickhouse::Client,
    w: &Window,
) -> clickhouse::error::Result<(Histogram, Vec<CompetitionRow>)> {
    let histogram_sql = format!(
        "SELECT sum(length(urq)) AS requests, sum(u1) AS one, sum(u2) AS two, sum(u3) AS more FROM ({})",
        kind_union(w)
    );
    let rows_sql = format!(
        "SELECT ud AS dvm, sum(uw) AS with_result, sum(uf) AS firsts, sum(uc) AS contested, \
                sum(ucw) AS contested_wins \
         FROM ( \
           SELECT hour, dvm AS ud, with_result AS uw, firsts AS uf, contested AS uc, contested_wins AS ucw \
           FROM job_competition_hourly FINAL WHERE hour >= toDateTime({{edge:UInt32}}) \
           UNION ALL {} \
         ) GROUP BY dvm",
        jl::competition_rows(&boundary(w), true)
    );
    tokio::try_join!(
        query(ch, w, &histogram_sql).fetch_one::<Histogram>(),
        query(ch, w, &rows_sql).fetch_all::<CompetitionRow>()
    )
}

/// Distinct requests each DVM answered in the window (`window::jobs_answered`): the live
/// (DVM, request) pairs whose newest answer is in the window, counted by hour, and in the window's
/// partial first hour one by one.
pub async fn jobs_answered(
    ch: &clickhouse::Client,
    w: &Window,
) -> clickhouse::error::Result<Vec<super::window::Answered>> {
    query(
        ch,
        w,
        "SELECT dvm AS pubkey, toUInt64(sum(n)) AS jobs FROM ( \
           SELECT dvm, pairs AS n FROM answered_hourly WHERE hour >= toDateTime({edge:UInt32}) \
           UNION ALL \
           SELECT dvm, toInt64(sign) AS n FROM answered_pairs \
           WHERE hour = toDateTime({edge:UInt32} - 3600) AND last_at >= {start:UInt32} \
         ) GROUP BY pubkey HAVING jobs > 0",
    )
    .fetch_all()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_what_quantiles_exact_picks() {
        // quantilesExact(0.5, 0.9, 0.99) over [1, 2]: positions 1, 1, 1.
        assert_eq!(exact_quantiles(&[1, 2], &[1, 1]), vec![2, 2, 2]);
        // Ten values 0..9: positions 5, 9, 9.
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(exact_quantiles(&v, &[1; 10]), vec![5, 9, 9]);
        // A heavy value: 3 x 7, 1 x 100.
        assert_eq!(exact_quantiles(&[7, 100], &[3, 1]), vec![7, 100, 100]);
        assert_eq!(exact_quantiles(&[], &[]), vec![0, 0, 0]);
        assert_eq!(exact_quantiles(&[4], &[1]), vec![4, 4, 4]);
    }
}
