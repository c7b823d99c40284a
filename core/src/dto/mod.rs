//! Types the api serves and the UI reads. Field names follow DVMDash's public API so existing
//! clients keep working; timestamps are RFC 3339 UTC strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Unix seconds as RFC 3339 UTC with a `Z` (`1970-01-01T00:00:00Z`), the form of every api timestamp.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds of an api timestamp (`2026-11-24T12:05:00Z`, the form [`rfc3339`] writes), or
/// `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let shape = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let month_days = [
        31,
        28 + i64::from(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The `timeRange` parameter: windows that end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TimeRange {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    #[default]
    Month,
}

impl TimeRange {
    pub const ALL: [TimeRange; 4] = [TimeRange::Hour, TimeRange::Day, TimeRange::Week, TimeRange::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            TimeRange::Hour => "1h",
            TimeRange::Day => "24h",
            TimeRange::Week => "7d",
            TimeRange::Month => "30d",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Window length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            TimeRange::Hour => 3600,
            TimeRange::Day => 24 * 3600,
            TimeRange::Week => 7 * 24 * 3600,
            TimeRange::Month => 30 * 24 * 3600,
        }
    }

    /// Time-series bucket width in seconds (DVMDash: 5 min, 1 h, 6 h, 1 day).
    pub fn step_seconds(self) -> u64 {
        match self {
            TimeRange::Hour => 300,
            TimeRange::Day => 3600,
            TimeRange::Week => 6 * 3600,
            TimeRange::Month => 24 * 3600,
        }
    }
}

impl std::fmt::Display for TimeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /api/stats/global/latest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GlobalStats {
    /// When these numbers were computed.
    pub timestamp: String,
    pub period_start: String,
    pub period_end: String,
    /// Distinct job requests (5000-5999) in the window.
    pub total_requests: u64,
    /// Distinct job results (6000-6999) in the window; feedback excluded.
    pub total_responses: u64,
    /// Distinct feedback events (7000) in the window.
    pub total_feedback: u64,
    /// Distinct request authors.
    pub unique_users: u64,
    /// Distinct request kinds with at least one request.
    pub unique_kinds: u64,
    /// Distinct authors of results or feedback.
    pub unique_dvms: u64,
    /// DVM (hex pubkey) with the most results and feedback.
    pub popular_dvm: Option<String>,
    /// Request kind with the most requests.
    pub popular_kind: Option<u16>,
    /// Request kind answered by the most distinct DVMs.
    pub competitive_kind: Option<u16>,
    pub time_series: Vec<GlobalPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GlobalPoint {
    /// Start of the bucket.
    pub time: String,
    pub total_requests: u64,
    pub total_responses: u64,
    /// Feedback events in the bucket (not in DVMDash's answer).
    #[serde(default)]
    pub total_feedback: u64,
    pub unique_users: u64,
    pub unique_dvms: u64,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `healthy` when every dependency answers, else `unhealthy`.
    pub status: String,
    /// DVMDash's field: `connected` or `disconnected` (ClickHouse).
    pub database: String,
    pub clickhouse: DependencyHealth,
    pub redis: DependencyHealth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DependencyHealth {
    pub ok: bool,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

/// The JSON body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    /// The offending parameter, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// DVMDash clients read `detail`; it repeats `error`.
    pub detail: String,
    /// With 429: seconds until the client may try again (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_back() {
        for t in [0, 951_782_400, 1_700_000_000, 1_767_225_599, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "+024-01-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn time_range_round_trips() {
        for r in TimeRange::ALL {
            assert_eq!(TimeRange::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
        }
        assert_eq!(TimeRange::parse("2h"), None);
        assert_eq!(TimeRange::default(), TimeRange::Month);
        assert_eq!(TimeRange::Month.seconds() / TimeRange::Month.step_seconds(), 30);
    }
}

/// One relay in the registry (Redis hash `<prefix>:relays`, value JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayEntry {
    /// `high` relays are watched by one more collector than `normal` ones.
    #[serde(default)]
    pub priority: RelayPriority,
    /// RFC 3339.
    pub added_at: String,
    /// `config` (seeded from DVMDASH_RELAYS) or `admin`.
    pub added_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RelayPriority {
    #[default]
    Normal,
    High,
}

impl RelayPriority {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayPriority::Normal => "normal",
            RelayPriority::High => "high",
        }
    }
}

/// A collector's view of one relay, published with its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayCounters {
    pub connected: bool,
    pub received: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub reconnects: u64,
    /// Unix ms of the last event, 0 if none.
    pub last_event_ms: u64,
    /// Newest `created_at` seen (unix s).
    pub newest_created_at: u64,
    /// Milliseconds from REQ to EOSE on the latest connection.
    pub eose_ms: u64,
    /// `rejected` by reason (bad signature, too large, future-dated, malformed message, ...).
    #[serde(default)]
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Where paging through the relay's stored events stands; `None` before the first page.
    #[serde(default)]
    pub paging: Option<PagingState>,
    /// Passes after the first backfill by how they read the relay: `negentropy` (NIP-77
    /// reconciliation, then only the missing ids) or `req` (the time range again, page by page).
    #[serde(default)]
    pub passes_by_method: BTreeMap<String, u64>,
    /// Whether the relay reconciles with NIP-77: `unknown` (not tried yet), `supported` or
    /// `unsupported`.
    #[serde(default)]
    pub negentropy: String,
}

/// Where a collector's paging through one relay's stored events stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PagingState {
    /// `backfill` (from the resume point), `settle` (the same range again) or `catchup` (the
    /// recent part, repeated).
    pub pass: String,
    /// Passes started on this connection.
    pub passes: u64,
    /// This pass has read its whole range.
    pub done: bool,
    /// REQs sent in this pass.
    pub requests: u32,
    /// The pass's range (unix s); every second after `cursor` is read completely.
    pub since: u64,
    pub cursor: u64,
    /// How the relay treats `until`, as learned: `unknown`, `inclusive` or `exclusive`.
    pub until: String,
    /// The most events it returned for one REQ, as learned.
    pub cap: u32,
    /// How this pass reads the relay: `req` (pages) or `negentropy` (NIP-77, then the missing ids).
    #[serde(default)]
    pub method: String,
    /// Events a negentropy pass found missing and fetched by id.
    #[serde(default)]
    pub fetched: u64,
}

/// `GET /api/relays/status`: every watched relay's health as its collectors report it, and the
/// collectors themselves. The plain counters run since each collector started; `in_window` counts
/// the same things over the asked window, from hourly counts kept in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayHealth {
    pub timestamp: String,
    /// The window of every row's `in_window` (`1h`, `24h`, `7d`, `30d`).
    #[serde(default)]
    pub window: String,
    /// RFC 3339 start of the window as counted: the start of the hour the window begins in, so a
    /// window covers up to one hour more than its name.
    #[serde(default)]
    pub window_since: String,
    pub relays: Vec<RelayHealthRow>,
    pub collectors: Vec<CollectorHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayHealthRow {
    pub relay: String,
    /// `connected` (a collector holds a connection), `connecting` (assigned, no connection now)
    /// or `unwatched` (no live collector is assigned).
    pub state: String,
    pub priority: RelayPriority,
    /// Collectors assigned to it.
    pub collectors: Vec<String>,
    /// Summed over its collectors, since each started (flattened: `received`, `accepted`, ...).
    #[serde(flatten)]
    pub since_start: RelayCounts,
    /// The newest event any collector received from it.
    pub last_event: Option<String>,
    /// Its collectors' paging, one per collector.
    pub paging: Vec<PagingState>,
    /// Passes after the first backfill by method (`negentropy`, `req`), summed over collectors.
    #[serde(default)]
    pub passes_by_method: BTreeMap<String, u64>,
    /// NIP-77 support as its collectors found it: `supported` if any did, else `unsupported` if
    /// any found that, else `unknown`.
    #[serde(default)]
    pub negentropy: String,
    /// The counters over the window, summed over every collector that watched it then.
    #[serde(default)]
    pub in_window: RelayCounts,
}

/// A relay's delivery counters, summed over collectors: since each started, or over a window
/// (hourly buckets; see `core::relay_counts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayCounts {
    pub received: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub reconnects: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectorHealth {
    pub id: String,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: f64,
    pub assigned: Vec<String>,
    /// Of those, the relays it holds a connection to.
    pub connected: u64,
}

mod directory;
mod stats;
pub use directory::*;
pub use stats::*;
