//! The SQL behind the statistics. Each function returns compact rows; `crate::stats` turns them into
//! answers. Every query of one answer takes the same [`Window`], so all its parts describe the same
//! moment.
//!
//! - [`window`] - counts per author, role and job kind in a window; time series; directed requests
//! - [`coverage`] - which relays delivered which events (coverage, reachability)
//! - [`entities`] - all-time activity of DVMs and kinds; announcements and profiles
//! - [`jobs`] - request/response linking for latency, outcomes, reach, competition, prices
//! - [`ledger`] - the same job statistics from the job ledger the ingester keeps linked
//! - [`history`] - monthly rollups
//! - [`liveness`] - the 5-minute slot ends at which each service was alive
//! - [`quality`] - deviations from the specs, deletions of others' events
//! - [`storage`] - ClickHouse's own health: table sizes, TTL extent, rollup lag, migrations
//! - [`payments`] - zap receipts paying DVMs, what they zapped, amounts asked

pub mod contextvm;
pub mod coverage;
pub mod entities;
pub mod history;
pub mod jobs;
pub mod ledger;
pub mod liveness;
pub mod payments;
pub mod quality;
pub mod storage;
pub mod window;

use dvmdash_core::dto::TimeRange;

/// A window ending now: `created_at >= start`. Whole hours from `edge` on are read from hourly
/// rollups, the partial hour `[start, edge)` from raw events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub range: TimeRange,
    pub now: u32,
    pub start: u32,
    pub edge: u32,
}

impl Window {
    pub fn new(range: TimeRange, now: u64) -> Self {
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        let start = now.saturating_sub(range.seconds() as u32);
        let edge = start.div_ceil(3600).saturating_mul(3600);
        Window {
            range,
            now,
            start,
            edge,
        }
    }

    /// `sql` with the window bound to its `{start:UInt32}` and `{now:UInt32}` parameters.
    pub fn query(&self, ch: &clickhouse::Client, sql: &str) -> clickhouse::query::Query {
        ch.query(sql).param("start", self.start).param("now", self.now)
    }

    /// Start of the first time-series bucket (aligned to the step, at or before `start`).
    pub fn first_bucket(&self) -> u32 {
        let step = self.range.step_seconds() as u32;
        self.start / step * step
    }
}

/// The job kind of a raw row: a request's kind, a result's request kind, 0 otherwise.
pub const JOB_KIND: &str = "multiIf(role = 'request', kind, role = 'result', request_kind, 0)";

/// Binary pubkey from a 64-hex parameter `{name:String}`.
pub fn pubkey_param(name: &str) -> String {
    format!("toFixedString(unhex({{{name}:String}}), 32)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_edges() {
        let w = Window::new(TimeRange::Day, 1_750_000_123);
        assert_eq!(w.start, 1_750_000_123 - 86_400);
        assert_eq!(w.edge % 3600, 0);
        assert!(w.edge >= w.start && w.edge - w.start < 3600);
        let aligned = Window::new(TimeRange::Hour, 1_749_999_600 + 3600);
        assert_eq!(aligned.edge, aligned.start, "an aligned start needs no raw part");
        assert_eq!(
            Window::new(TimeRange::Week, 1_750_000_123).first_bucket() % 21_600,
            0
        );
    }
}
