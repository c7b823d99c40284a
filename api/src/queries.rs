//! The SQL behind the statistics endpoints. Every query takes `now` from the caller so all parts of
//! one answer describe the same window.

use dvmdash_core::dto::{GlobalPoint, GlobalStats, TimeRange};
use serde::Deserialize;

use crate::error::ApiResult;

pub use dvmdash_core::dto::rfc3339;

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Totals {
    total_requests: u64,
    total_responses: u64,
    total_feedback: u64,
    unique_users: u64,
    unique_kinds: u64,
    unique_dvms: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Bucket {
    bucket: u32,
    total_requests: u64,
    total_responses: u64,
    unique_users: u64,
    unique_dvms: u64,
}

/// `/api/stats/global/latest` for the window ending at `now`.
pub async fn global_stats(ch: &clickhouse::Client, range: TimeRange, now: u64) -> ApiResult<GlobalStats> {
    let start = now.saturating_sub(range.seconds());
    let step = range.step_seconds();
    let totals = ch
        .query(
            "SELECT uniqExactIf(event_id, role = 'request') AS total_requests, \
                    uniqExactIf(event_id, role = 'result') AS total_responses, \
                    uniqExactIf(event_id, role = 'feedback') AS total_feedback, \
                    uniqExactIf(pubkey, role = 'request') AS unique_users, \
                    uniqExactIf(kind, role = 'request') AS unique_kinds, \
                    uniqExactIf(pubkey, role IN ('result', 'feedback')) AS unique_dvms \
             FROM events_raw WHERE created_at >= toDateTime({start:UInt32})",
        )
        .param("start", start)
        .fetch_one::<Totals>();
    let popular_dvm = ch
        .query(
            "SELECT lower(hex(pubkey)) FROM events_raw \
             WHERE created_at >= toDateTime({start:UInt32}) AND role IN ('result', 'feedback') \
             GROUP BY pubkey ORDER BY uniqExact(event_id) DESC, pubkey LIMIT 1",
        )
        .param("start", start)
        .fetch_optional::<String>();
    let popular_kind = ch
        .query(
            "SELECT kind FROM events_raw WHERE created_at >= toDateTime({start:UInt32}) AND role = 'request' \
             GROUP BY kind ORDER BY uniqExact(event_id) DESC, kind LIMIT 1",
        )
        .param("start", start)
        .fetch_optional::<u16>();
    let competitive_kind = ch
        .query(
            "SELECT request_kind FROM events_raw \
             WHERE created_at >= toDateTime({start:UInt32}) AND role = 'result' AND request_kind > 0 \
             GROUP BY request_kind ORDER BY uniqExact(pubkey) DESC, request_kind LIMIT 1",
        )
        .param("start", start)
        .fetch_optional::<u16>();
    let series = ch
        .query(
            "SELECT toUInt32(intDiv(toUInt32(created_at), {step:UInt32}) * {step:UInt32}) AS bucket, \
                    uniqExactIf(event_id, role = 'request') AS total_requests, \
                    uniqExactIf(event_id, role = 'result') AS total_responses, \
                    uniqExactIf(pubkey, role = 'request') AS unique_users, \
                    uniqExactIf(pubkey, role IN ('result', 'feedback')) AS unique_dvms \
             FROM events_raw WHERE created_at >= toDateTime({start:UInt32}) \
             GROUP BY bucket ORDER BY bucket",
        )
        .param("start", start)
        .param("step", step)
        .fetch_all::<Bucket>();
    let (totals, popular_dvm, popular_kind, competitive_kind, series) =
        tokio::try_join!(totals, popular_dvm, popular_kind, competitive_kind, series)?;

    Ok(GlobalStats {
        timestamp: rfc3339(now),
        period_start: rfc3339(start),
        period_end: rfc3339(now),
        total_requests: totals.total_requests,
        total_responses: totals.total_responses,
        total_feedback: totals.total_feedback,
        unique_users: totals.unique_users,
        unique_kinds: totals.unique_kinds,
        unique_dvms: totals.unique_dvms,
        popular_dvm,
        popular_kind,
        competitive_kind,
        time_series: fill_series(series, start, now, step),
    })
}

/// One point per bucket from the window start to now, zeros where nothing happened.
fn fill_series(rows: Vec<Bucket>, start: u64, now: u64, step: u64) -> Vec<GlobalPoint> {
    let first = start / step * step;
    let last = now / step * step;
    let mut rows = rows.into_iter().peekable();
    let mut out = Vec::new();
    let mut t = first;
    while t <= last {
        let mut p = GlobalPoint {
            time: rfc3339(t),
            ..Default::default()
        };
        while let Some(r) = rows.next_if(|r| u64::from(r.bucket) <= t) {
            if u64::from(r.bucket) == t {
                p.total_requests = r.total_requests;
                p.total_responses = r.total_responses;
                p.unique_users = r.unique_users;
                p.unique_dvms = r.unique_dvms;
            }
        }
        out.push(p);
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_has_dvmdash_point_counts_and_fills_gaps() {
        let now = 1_750_000_123;
        for (range, points) in [
            (TimeRange::Hour, 13),
            (TimeRange::Day, 25),
            (TimeRange::Week, 29),
            (TimeRange::Month, 31),
        ] {
            let s = fill_series(Vec::new(), now - range.seconds(), now, range.step_seconds());
            assert_eq!(s.len(), points, "{range}");
        }
        let step = 300;
        let start = now - 3600;
        let b = (start / step + 2) * step;
        let rows = vec![Bucket {
            bucket: b as u32,
            total_requests: 7,
            total_responses: 1,
            unique_users: 2,
            unique_dvms: 1,
        }];
        let s = fill_series(rows, start, now, step);
        assert_eq!(s[2].total_requests, 7);
        assert_eq!(s[2].time, rfc3339(b));
        assert_eq!(s.iter().map(|p| p.total_requests).sum::<u64>(), 7);
    }
}
