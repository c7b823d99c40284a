//! Job-level statistics: requests in the window linked to every result and feedback that answers
//! them, straight from `events_raw` (30 days kept, the longest window). The api answers from the
//! job ledger instead ([`super::ledger`]) while its finalizer keeps up; these are the definition it
//! is checked against and the answer when no finalizer runs.

use dvmdash_core::event::Id32;
use serde::Deserialize;

use super::Window;

/// Timeout per request kind, after which a request is final (no more waiting for answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTimeouts {
    /// (first kind, last kind, seconds), first match wins.
    pub ranges: Vec<(u16, u16, u32)>,
    pub default_secs: u32,
}

impl Default for JobTimeouts {
    fn default() -> Self {
        JobTimeouts {
            ranges: vec![(5300, 5399, 300)],
            default_secs: 3600,
        }
    }
}

impl std::str::FromStr for JobTimeouts {
    type Err = String;

    /// `5300-5399=300,5100=600,default=3600`
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = JobTimeouts {
            ranges: Vec::new(),
            default_secs: 3600,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kinds, secs) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected KINDS=SECONDS"))?;
            let secs: u32 = secs
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: seconds must be a number"))?;
            if kinds.trim() == "default" {
                t.default_secs = secs;
                continue;
            }
            let (lo, hi) = kinds.split_once('-').unwrap_or((kinds, kinds));
            let lo: u16 = lo.trim().parse().map_err(|_| format!("{part:?}: bad kind"))?;
            let hi: u16 = hi.trim().parse().map_err(|_| format!("{part:?}: bad kind"))?;
            if lo > hi {
                return Err(format!("{part:?}: empty kind range"));
            }
            t.ranges.push((lo, hi, secs));
        }
        Ok(t)
    }
}

impl JobTimeouts {
    pub fn for_kind(&self, kind: u16) -> u32 {
        self.ranges
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&kind))
            .map_or(self.default_secs, |r| r.2)
    }

    /// The timeout of `kind_expr` as a SQL expression (numbers only, so safe to splice).
    pub(crate) fn sql(&self, kind_expr: &str) -> String {
        let mut s = String::from("multiIf(");
        for (lo, hi, secs) in &self.ranges {
            s.push_str(&format!("{kind_expr} BETWEEN {lo} AND {hi}, {secs}, "));
        }
        s.push_str(&format!("{})", self.default_secs));
        s
    }
}

/// Requests of the window (`requests`) and, per (request, DVM), what the DVM sent (`jobs`), from the
/// parameterized views of `clickhouse/schema/0004_jobs.sql` (the one definition of job linking).
/// `final`: the request's kind-specific timeout has passed, so a quiet job counts as stalled or
/// unanswered rather than pending.
fn ctes(t: &JobTimeouts) -> String {
    format!(
        "WITH requests AS ( \
           SELECT request_id AS rid, kind, requested_at AS req_at, targets, cancelled, \
                  toInt64({{now:UInt32}}) - toInt64(req_at) >= {timeout} AS final \
           FROM job_requests(start = {{start:UInt32}}) \
         ), \
         jobs AS ( \
           SELECT request_id AS rid, dvm, has_feedback AS has_fb, first_feedback_at AS first_fb, \
                  has_result AS has_res, first_result_at AS first_res, strength \
           FROM job_responses(start = {{start:UInt32}}) \
         ) ",
        timeout = t.sql("kind")
    )
}

/// How performance rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One row over every job: the network's own latency and success rate.
    All,
    Dvm,
    Kind,
    DvmKind,
}

impl Grouping {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Grouping::All),
            "dvm" => Some(Grouping::Dvm),
            "kind" => Some(Grouping::Kind),
            "dvm_kind" => Some(Grouping::DvmKind),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::All => "all",
            Grouping::Dvm => "dvm",
            Grouping::Kind => "kind",
            Grouping::DvmKind => "dvm_kind",
        }
    }

    /// (dvm expression, kind expression, GROUP BY list) for columns named `dvm` and `kind`.
    pub(crate) fn columns(self, dvm: &str, kind: &str) -> (String, String, String) {
        const NO_DVM: &str = "toFixedString(unhex(repeat('00', 32)), 32)";
        match self {
            // A constant key: one group, or none when there are no jobs.
            Grouping::All => (NO_DVM.into(), "toUInt16(0)".into(), "toUInt16(0)".into()),
            Grouping::Dvm => (dvm.into(), "toUInt16(0)".into(), dvm.into()),
            Grouping::Kind => (NO_DVM.into(), kind.into(), kind.into()),
            Grouping::DvmKind => (dvm.into(), kind.into(), format!("{dvm}, {kind}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct PerformanceRow {
    pub dvm: Id32,
    pub kind: u16,
    pub jobs: u64,
    pub fb_count: u64,
    pub fb_q: Vec<i64>,
    pub res_count: u64,
    pub res_q: Vec<i64>,
    pub success: u64,
    pub partial: u64,
    pub error: u64,
    pub cancelled: u64,
    pub payment_required: u64,
    pub stalled: u64,
    pub pending: u64,
}

pub async fn performance(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
    g: Grouping,
) -> clickhouse::error::Result<Vec<PerformanceRow>> {
    let (dvm, kind, group) = g.columns("dvm", "kind");
    let sql = format!(
        "{ctes} \
         SELECT {dvm} AS dvm, {kind} AS kind, count() AS jobs, \
                countIf(has_fb) AS fb_count, quantilesExactIf(0.5, 0.9, 0.99)(fb_lat, has_fb) AS fb_q, \
                countIf(has_res) AS res_count, quantilesExactIf(0.5, 0.9, 0.99)(res_lat, has_res) AS res_q, \
                countIf(strength = 5) AS success, countIf(strength = 4) AS partial, countIf(strength = 3) AS error, \
                countIf(strength <= 2 AND withdrawn) AS cancelled, \
                countIf(strength = 2 AND final AND NOT withdrawn) AS payment_required, \
                countIf(strength = 1 AND final AND NOT withdrawn) AS stalled, \
                countIf(strength <= 2 AND NOT final AND NOT withdrawn) AS pending \
         FROM ( \
           SELECT j.dvm AS dvm, r.kind AS kind, r.final AS final, r.cancelled AS withdrawn, \
                  j.has_fb AS has_fb, j.has_res AS has_res, \
                  j.strength AS strength, \
                  greatest(toInt64(j.first_fb) - toInt64(r.req_at), 0) AS fb_lat, \
                  greatest(toInt64(j.first_res) - toInt64(r.req_at), 0) AS res_lat \
           FROM jobs AS j INNER JOIN requests AS r ON j.rid = r.rid \
         ) \
         GROUP BY {group}",
        ctes = ctes(t)
    );
    w.query(ch, &sql).fetch_all().await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct ErrorReason {
    pub dvm: Id32,
    pub kind: u16,
    pub reason: String,
    pub count: u64,
}

/// The 5 most frequent error reasons per group, for requests in the window.
pub async fn top_errors(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
    g: Grouping,
) -> clickhouse::error::Result<Vec<ErrorReason>> {
    let (dvm, kind, group) = g.columns("e.pubkey", "r.kind");
    let sql = format!(
        "{ctes} \
         SELECT {dvm} AS dvm, {kind} AS kind, e.status_reason AS reason, uniqExact(e.event_id) AS count \
         FROM events_raw AS e INNER JOIN requests AS r ON e.request_id = r.rid \
         WHERE e.role = 'feedback' AND e.status = 'error' AND e.status_reason != '' \
         GROUP BY {group}, reason \
         ORDER BY dvm, kind, count DESC, reason \
         LIMIT 5 BY dvm, kind",
        ctes = ctes(t)
    );
    w.query(ch, &sql).fetch_all().await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct KindReachRow {
    pub kind: u16,
    pub requests: u64,
    pub final_requests: u64,
    pub unanswered: u64,
    pub directed: u64,
    pub open: u64,
}

pub async fn kind_reach(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
) -> clickhouse::error::Result<Vec<KindReachRow>> {
    let sql = format!(
        "{ctes} \
         SELECT kind, count() AS requests, countIf(final) AS final_requests, \
                countIf(final AND rid NOT IN (SELECT rid FROM jobs)) AS unanswered, \
                countIf(notEmpty(targets)) AS directed, countIf(empty(targets)) AS open \
         FROM requests GROUP BY kind",
        ctes = ctes(t)
    );
    w.query(ch, &sql).fetch_all().await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct DirectedRow {
    pub target: Id32,
    pub directed: u64,
    pub final_directed: u64,
    pub missed: u64,
}

pub async fn directed_reach(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
) -> clickhouse::error::Result<Vec<DirectedRow>> {
    let sql = format!(
        "{ctes} \
         SELECT target, count() AS directed, countIf(final) AS final_directed, \
                countIf(final AND (rid, target) NOT IN (SELECT rid, dvm FROM jobs)) AS missed \
         FROM (SELECT rid, final, arrayJoin(targets) AS target FROM requests) \
         GROUP BY target",
        ctes = ctes(t)
    );
    w.query(ch, &sql).fetch_all().await
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Histogram {
    pub requests: u64,
    pub one: u64,
    pub two: u64,
    pub more: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct CompetitionRow {
    pub dvm: Id32,
    pub with_result: u64,
    pub firsts: u64,
    pub contested: u64,
    pub contested_wins: u64,
}

/// Per answered request: every DVM that sent a result with its first result time, how many did,
/// and the winner (earliest first result; ties go to the lowest pubkey, so the answer is stable).
/// Built once from `jobs` and array-joined back, rather than joining `jobs` to itself.
fn answered() -> &'static str {
    ", answered AS ( \
       SELECT rid, groupArray((first_res, dvm)) AS responders, length(responders) AS n, \
              arraySort(responders)[1].2 AS winner \
       FROM jobs WHERE has_res GROUP BY rid \
     ) "
}

pub async fn competition(
    ch: &clickhouse::Client,
    w: &Window,
    t: &JobTimeouts,
) -> clickhouse::error::Result<(Histogram, Vec<CompetitionRow>)> {
    let base = format!("{}{}", ctes(t), answered());
    let histogram = w.query(ch, &format!(
            "{base} SELECT assumeNotNull((SELECT count() FROM requests)) AS requests, countIf(n = 1) AS one, \
                           countIf(n = 2) AS two, countIf(n >= 3) AS more FROM answered"
        ))
        .fetch_one::<Histogram>();
    let rows = w
        .query(
            ch,
            &format!(
                "{base} SELECT r.2 AS dvm, count() AS with_result, countIf(r.2 = winner) AS firsts, \
                           countIf(n >= 2) AS contested, countIf(n >= 2 AND r.2 = winner) AS contested_wins \
                    FROM answered ARRAY JOIN responders AS r \
                    GROUP BY dvm"
            ),
        )
        .fetch_all::<CompetitionRow>();
    tokio::try_join!(histogram, rows)
}

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct PriceRow {
    pub dvm: Id32,
    pub kind: u16,
    pub count: u64,
    pub min_msat: u64,
    pub median_msat: u64,
    pub max_msat: u64,
}

/// Amounts of `payment-required` feedback created in the window, per DVM or per linked request kind.
pub async fn prices(
    ch: &clickhouse::Client,
    w: &Window,
    by_kind: bool,
) -> clickhouse::error::Result<Vec<PriceRow>> {
    const ASKS: &str = "SELECT pubkey, request_id, assumeNotNull(amount_msat) AS amount FROM events_raw \
        WHERE role = 'feedback' AND status = 'payment-required' AND amount_msat IS NOT NULL \
          AND created_at >= toDateTime({start:UInt32})";
    const AGG: &str = "count() AS count, min(amount) AS min_msat, quantileExact(0.5)(amount) AS median_msat, \
        max(amount) AS max_msat";
    let sql = if by_kind {
        format!(
            "WITH asks AS ({ASKS}) \
             SELECT toFixedString(unhex(repeat('00', 32)), 32) AS dvm, r.kind AS kind, {AGG} \
             FROM asks AS a INNER JOIN ( \
               SELECT event_id AS rid, any(kind) AS kind FROM events_raw \
               WHERE role = 'request' AND event_id IN (SELECT request_id FROM asks) GROUP BY event_id \
             ) AS r ON a.request_id = r.rid \
             GROUP BY r.kind"
        )
    } else {
        format!(
            "WITH asks AS ({ASKS}) SELECT pubkey AS dvm, toUInt16(0) AS kind, {AGG} FROM asks GROUP BY pubkey"
        )
    };
    ch.query(&sql).param("start", w.start).fetch_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_and_apply() {
        let t: JobTimeouts = "5300-5399=300, 5100=600, default=1800".parse().unwrap();
        assert_eq!(t.for_kind(5300), 300);
        assert_eq!(t.for_kind(5100), 600);
        assert_eq!(t.for_kind(5050), 1800);
        assert_eq!(
            t.sql("k"),
            "multiIf(k BETWEEN 5300 AND 5399, 300, k BETWEEN 5100 AND 5100, 600, 1800)"
        );
        assert!("5300".parse::<JobTimeouts>().is_err());
        assert!("5399-5300=1".parse::<JobTimeouts>().is_err());
        assert!("x=1".parse::<JobTimeouts>().is_err());
        assert_eq!(JobTimeouts::default().for_kind(5399), 300);
    }
}
