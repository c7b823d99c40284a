//! The job ledger (`clickhouse/schema/0009_job_ledger.sql`): requests linked to their answers once,
//! by the ingester's finalizer, so the api's job statistics read a few thousand hourly rows
//! instead of joining millions of raw events per query.
//!
//! - The ingester records, after each insert and before acknowledging it, which request hours the
//!   batch touched ([`touches`]) in a Redis set: a request's own hour, or the id of the request a
//!   result, feedback or deletion names when its hour is not known in the process.
//! - The finalizer ([`run`], one at a time per deployment under a lease) takes the set every few
//!   seconds, finds the hours the ids belong to, relinks those hours from raw events under a new
//!   version ([`relink`]) and records the moment its work is complete to (`job_ledger_clock`).
//! - The api answers job statistics as of that moment: whole hours from the hourly tables, the
//!   window's partial first hour from the ledger rows ([`perf_rows`] and friends, the same SQL the
//!   finalizer aggregates hours with).
//!
//! A lost Redis (no `linked` marker) or a first start relinks every hour.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::event::Id32;
use crate::lease::Lease;
use crate::redis_keys::RedisNames;
use crate::store::RawEventRow;

/// Metrics of the finalizer (docs/telemetry.md).
pub mod metrics {
    pub const PASSES: &str = "dvmdash_job_ledger_passes_total";
    pub const PASS_SECONDS: &str = "dvmdash_job_ledger_pass_seconds";
    pub const HOURS_LINKED: &str = "dvmdash_job_ledger_hours_linked_total";
    pub const AS_OF: &str = "dvmdash_job_ledger_as_of_timestamp_seconds";

    pub fn describe() {
        use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(PASSES, "job finalizer passes, by outcome (ok, failed)");
        describe_histogram!(PASS_SECONDS, Unit::Seconds, "duration of one job finalizer pass");
        describe_counter!(HOURS_LINKED, "request hours relinked into the job ledger");
        describe_gauge!(
            AS_OF,
            Unit::Seconds,
            "unix time the job ledger is complete to (its clock), set by the finalizer holding the lease"
        );
    }
}

/// The all-zero pubkey of a request's own ledger row.
pub const NO_DVM: &str = "toFixedString('', 32)";

/// Hours relinked by one statement: bounds the memory of the linking join.
const HOURS_PER_STATEMENT: usize = 48;

/// Touches taken per pass; the rest wait for the next one.
const TOUCHES_PER_PASS: usize = 100_000;
/// Most answers one step takes (a backfill stores tens of thousands a second); more waiting make
/// the next step start at once. Bounds the finalizer's memory: a step holds its answers three
/// times over (members, parsed, the string sent).
const ANSWERS_PER_STEP: usize = 25_000;

/// Moves up to ARGV[1] touches from KEYS[1] into KEYS[2] and returns all of KEYS[2] (with what a
/// failed pass left there). SADD arguments go in slices: Lua's unpack has a stack limit.
static TAKE_TOUCHES: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local m = redis.call('SPOP', KEYS[1], ARGV[1])
for i = 1, #m, 5000 do
  redis.call('SADD', KEYS[2], unpack(m, i, math.min(i + 4999, #m)))
end
return redis.call('SMEMBERS', KEYS[2])
"#,
    )
});

/// Requests this old are past every window and the tables' TTL: never relinked.
const KEEP_SECS: u32 = 32 * 86_400;

/// Recently stored requests and their hours, so the touches of their answers name the hour
/// rather than an id the finalizer must look up. Bounded: cleared when full.
#[derive(Debug, Default)]
pub struct RecentRequests {
    hours: HashMap<Id32, u32>,
}

impl RecentRequests {
    const CAPACITY: usize = 200_000;

    fn remember(&mut self, id: Id32, hour: u32) {
        if self.hours.len() >= Self::CAPACITY {
            self.hours.clear();
        }
        self.hours.insert(id, hour);
    }
}

fn hour_of(t: u32) -> u32 {
    t - t % 3600
}

/// The answers of a batch for the finalizer's answered jobs: `a<dvm hex><request hex><created_at>`,
/// one per (DVM, request) with its newest answer in the batch (only the newest counts).
pub fn answers(rows: &[RawEventRow]) -> BTreeSet<String> {
    let mut newest: BTreeMap<(&Id32, &Id32), u32> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| (r.role == "result" || r.role == "feedback") && r.request_id != [0u8; 32])
    {
        let e = newest.entry((&r.pubkey, &r.request_id)).or_insert(r.created_at);
        *e = (*e).max(r.created_at);
    }
    newest
        .into_iter()
        .map(|((dvm, request), at)| format!("a{}{}{at}", hex::encode(dvm), hex::encode(request)))
        .collect()
}

/// An answer member back as (DVM hex, request hex, created_at); `None` for anything else.
pub fn parse_answer(m: &str) -> Option<(&str, &str, u32)> {
    let m = m.strip_prefix('a')?;
    if m.len() < 129 || !m.is_char_boundary(128) {
        return None;
    }
    let (ids, at) = m.split_at(128);
    if !ids
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let at: u32 = at.parse().ok()?;
    Some((&ids[..64], &ids[64..], at))
}

/// The touch set members of a batch: `h<unix hour>` for a known hour, `r<hex id>` for a request
/// whose hour the finalizer looks up.
pub fn touches(rows: &[RawEventRow], recent: &mut RecentRequests) -> BTreeSet<String> {
    for r in rows.iter().filter(|r| r.role == "request") {
        recent.remember(r.event_id, hour_of(r.created_at));
    }
    let mut out = BTreeSet::new();
    let named = |id: &Id32, out: &mut BTreeSet<String>| match recent.hours.get(id) {
        Some(h) => out.insert(format!("h{h}")),
        None => out.insert(format!("r{}", hex::encode(id))),
    };
    for r in rows {
        match r.role.as_str() {
            "request" => {
                out.insert(format!("h{}", hour_of(r.created_at)));
            }
            "result" | "feedback" if r.request_id != [0u8; 32] => {
                named(&r.request_id, &mut out);
            }
            "deletion" => {
                for t in &r.targets {
                    named(t, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// Adds a batch's touches ([`touches`]) and answers ([`answers`]) to the sets the finalizer
/// reads, in one round trip (it runs after every insert).
pub async fn record(
    conn: &mut ConnectionManager,
    names: &RedisNames,
    touches: &BTreeSet<String>,
    answers: &BTreeSet<String>,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for (key, members) in [(names.job_touches(), touches), (names.job_answers().0, answers)] {
        let members: Vec<&String> = members.iter().collect();
        for chunk in members.chunks(10_000) {
            pipe.sadd(&key, chunk).ignore();
        }
    }
    if touches.is_empty() && answers.is_empty() {
        return Ok(());
    }
    pipe.query_async(conn).await
}

/// What the members of a touch set say: hours, and request ids to look up. Anything else (written
/// by something other than the ingester) is dropped.
pub fn parse_touches(members: &[String]) -> (BTreeSet<u32>, Vec<String>) {
    let (mut hours, mut ids) = (BTreeSet::new(), Vec::new());
    for m in members {
        if let Some(h) = m.strip_prefix('h') {
            if let Ok(h) = h.parse::<u32>()
                && h % 3600 == 0
            {
                hours.insert(h);
            }
        } else if let Some(id) = m.strip_prefix('r')
            && id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            ids.push(id.to_owned());
        }
    }
    (hours, ids)
}

/// The ledger's columns under names of their own, so aggregates can be named after the hourly
/// tables' columns without shadowing their inputs. `filter` selects rows; `final_` reads
/// collapsed versions (the api), or not (the finalizer, filtering one version).
fn source(filter: &str, final_: bool) -> String {
    format!(
        "(SELECT hour, request_id AS rid, dvm AS d, kind AS k, requested_at AS t, withdrawn AS wd, \
                 responders AS nres, targets AS tg, missed AS ms, answered AS ans, has_fb AS hfb, \
                 fb_lat AS lfb, has_res AS hres, res_lat AS lres, strength AS st, winner AS win, \
                 error_reasons AS reasons \
          FROM job_ledger{} WHERE {filter})",
        if final_ { " FINAL" } else { "" }
    )
}

/// Rows of `job_perf_hourly` (without `version`) from the ledger rows `filter` selects.
pub fn perf_rows(filter: &str, final_: bool) -> String {
    format!(
        "SELECT hour, k AS kind, d AS dvm, count() AS jobs, countIf(hfb) AS fb_count, \
                tupleElement(sumMapIf([lfb], [toUInt64(1)], hfb), 1) AS fb_lat, \
                tupleElement(sumMapIf([lfb], [toUInt64(1)], hfb), 2) AS fb_n, \
                countIf(hres) AS res_count, \
                tupleElement(sumMapIf([lres], [toUInt64(1)], hres), 1) AS res_lat, \
                tupleElement(sumMapIf([lres], [toUInt64(1)], hres), 2) AS res_n, \
                countIf(st = 5) AS success, countIf(st = 4) AS partial, countIf(st = 3) AS error, \
                countIf(st <= 2 AND wd) AS cancelled, \
                groupArrayIf(t, st = 2 AND NOT wd) AS quiet_pr, \
                groupArrayIf(t, st = 1 AND NOT wd) AS quiet_proc \
         FROM {} WHERE d != {NO_DVM} GROUP BY hour, kind, dvm",
        source(filter, final_)
    )
}

/// Rows of `job_errors_hourly` (without `version`).
pub fn error_rows(filter: &str, final_: bool) -> String {
    format!(
        "SELECT hour, k AS kind, d AS dvm, reason, count() AS events \
         FROM {} ARRAY JOIN reasons AS reason WHERE d != {NO_DVM} GROUP BY hour, kind, dvm, reason",
        source(filter, final_)
    )
}

/// Rows of `job_kind_hourly` (without `version`).
pub fn kind_rows(filter: &str, final_: bool) -> String {
    format!(
        "SELECT hour, k AS kind, groupArray(t) AS requested, groupArrayIf(t, NOT ans) AS unanswered, \
                countIf(notEmpty(tg)) AS directed, countIf(empty(tg)) AS open, \
                countIf(nres = 1) AS one, countIf(nres = 2) AS two, countIf(nres >= 3) AS more \
         FROM {} WHERE d = {NO_DVM} GROUP BY hour, kind",
        source(filter, final_)
    )
}

/// Rows of `job_directed_hourly` (without `version`). A target named twice counts twice, as in
/// the raw query.
pub fn directed_rows(filter: &str, final_: bool) -> String {
    format!(
        "SELECT hour, target, k AS kind, groupArray(t) AS directed, \
                groupArrayIf(t, has(ms, target)) AS missed \
         FROM {} ARRAY JOIN tg AS target WHERE d = {NO_DVM} GROUP BY hour, target, kind",
        source(filter, final_)
    )
}

/// Rows of `job_competition_hourly` (without `version`).
pub fn competition_rows(filter: &str, final_: bool) -> String {
    format!(
        "SELECT hour, d AS dvm, count() AS with_result, countIf(win) AS firsts, \
                countIf(nres >= 2) AS contested, countIf(win AND nres >= 2) AS contested_wins \
         FROM {} WHERE d != {NO_DVM} AND hres GROUP BY hour, dvm",
        source(filter, final_)
    )
}

/// The requests of `hours` with their deletion state (the hours are a `{hours:Array(UInt32)}`).
const REQUESTS: &str = "SELECT event_id AS rid, any(kind) AS rk, toUInt32(any(created_at)) AS req_at, \
        any(targets) AS rtg, \
        (event_id, any(pubkey)) IN (SELECT arrayJoin(targets), pubkey FROM events_raw WHERE role = 'deletion') AS rwd \
    FROM events_raw \
    WHERE role = 'request' AND toUInt32(toStartOfHour(created_at)) IN {hours:Array(UInt32)} \
    GROUP BY event_id";

/// The ledger's DVM rows of `hours`: every (request, DVM that answered it) with what it sent. One
/// pass over the answers (a request's answers can have any timestamp, so none are skipped).
fn pair_rows_sql() -> String {
    format!(
        "INSERT INTO job_ledger (hour, request_id, dvm, version, kind, requested_at, withdrawn, responders, \
                                has_fb, fb_lat, has_res, res_lat, strength, winner, error_reasons) \
         WITH requests AS ({REQUESTS}), \
         pairs AS ( \
           SELECT request_id AS prid, pubkey AS pdvm, \
                  countIf(role = 'feedback') > 0 AS p_fb, toUInt32(minIf(created_at, role = 'feedback')) AS p_fb_at, \
                  countIf(role = 'result') > 0 AS p_res, toUInt32(minIf(created_at, role = 'result')) AS p_res_at, \
                  max(multiIf(role = 'result' OR status = 'success', 5, status = 'partial', 4, status = 'error', 3, \
                              status = 'payment-required', 2, 1)) AS p_st, \
                  arrayMap(x -> x.2, groupUniqArrayIf((event_id, status_reason), \
                      role = 'feedback' AND status = 'error' AND status_reason != '')) AS p_reasons \
           FROM events_raw \
           WHERE role IN ('result', 'feedback') AND request_id IN (SELECT rid FROM requests) \
           GROUP BY request_id, pubkey \
         ) \
         SELECT toDateTime(intDiv(r.req_at, 3600) * 3600) AS hour, p.prid, p.pdvm, {{version:UInt64}}, r.rk, r.req_at, r.rwd, \
                toUInt32(countIf(p.p_res) OVER (PARTITION BY p.prid)), \
                p.p_fb, toUInt32(greatest(toInt64(p.p_fb_at) - toInt64(r.req_at), 0)), \
                p.p_res, toUInt32(greatest(toInt64(p.p_res_at) - toInt64(r.req_at), 0)), p.p_st, \
                p.p_res AND p.pdvm = argMinIf(p.pdvm, (p.p_res_at, p.pdvm), p.p_res) OVER (PARTITION BY p.prid), \
                p.p_reasons \
         FROM pairs AS p INNER JOIN requests AS r ON p.prid = r.rid"
    )
}

/// The ledger's request rows of `hours`, from its DVM rows of this version.
fn request_rows_sql() -> String {
    format!(
        "INSERT INTO job_ledger (hour, request_id, dvm, version, kind, requested_at, withdrawn, responders, \
                                targets, missed, answered) \
         WITH requests AS ({REQUESTS}) \
         SELECT toDateTime(intDiv(r.req_at, 3600) * 3600), r.rid, {NO_DVM}, {{version:UInt64}}, r.rk, r.req_at, r.rwd, \
                p.n, r.rtg, arrayFilter(x -> NOT has(p.dvms, x), r.rtg), notEmpty(p.dvms) \
         FROM requests AS r LEFT JOIN ( \
           SELECT request_id AS prid, groupArray(dvm) AS dvms, toUInt32(countIf(has_res)) AS n \
           FROM job_ledger \
           WHERE version = {{version:UInt64}} AND toUInt32(hour) IN {{hours:Array(UInt32)}} AND dvm != {NO_DVM} \
           GROUP BY request_id \
         ) AS p ON p.prid = r.rid"
    )
}

/// The hourly tables of `hours`, each from the ledger rows of this version.
fn hourly_sqls() -> Vec<(&'static str, String)> {
    let filter = "version = {version:UInt64} AND toUInt32(hour) IN {hours:Array(UInt32)}";
    let with_version = |table: &'static str, cols: &str, rows: String| {
        (
            table,
            format!("INSERT INTO {table} ({cols}, version) SELECT *, {{version:UInt64}} FROM ({rows})"),
        )
    };
    vec![
        with_version(
            "job_perf_hourly",
            "hour, kind, dvm, jobs, fb_count, fb_lat, fb_n, res_count, res_lat, res_n, success, partial, error, \
             cancelled, quiet_pr, quiet_proc",
            perf_rows(filter, false),
        ),
        with_version(
            "job_errors_hourly",
            "hour, kind, dvm, reason, events",
            error_rows(filter, false),
        ),
        with_version(
            "job_kind_hourly",
            "hour, kind, requested, unanswered, directed, open, one, two, more",
            kind_rows(filter, false),
        ),
        with_version(
            "job_directed_hourly",
            "hour, target, kind, directed, missed",
            directed_rows(filter, false),
        ),
        with_version(
            "job_competition_hourly",
            "hour, dvm, with_result, firsts, contested, contested_wins",
            competition_rows(filter, false),
        ),
    ]
}

/// Relinks `hours` from raw events under `version`: the ledger's DVM rows, then its request rows,
/// then every hourly table.
pub async fn relink(ch: &clickhouse::Client, hours: &[u32], version: u64) -> anyhow::Result<()> {
    if hours.is_empty() {
        return Ok(());
    }
    let run = |sql: String, what: &'static str| {
        let q = ch
            .query(&sql)
            .param("hours", hours.to_vec())
            .param("version", version);
        async move {
            q.execute()
                .await
                .with_context(|| format!("relinking jobs: {what}"))
        }
    };
    run(pair_rows_sql(), "job_ledger (answers)").await?;
    run(request_rows_sql(), "job_ledger (requests)").await?;
    for (table, sql) in hourly_sqls() {
        run(sql, table).await?;
    }
    Ok(())
}

/// Moves every (DVM, request) pair of `answered_pairs` to its newest answer: the answers given as
/// (DVM hex, request hex, created_at), or every answer in `events_raw` when `None`. A moved pair's
/// old row is cancelled by a -1 copy; `answered_hourly` follows by its view. Giving an answer
/// twice changes nothing (a pair only moves to a newer answer).
pub async fn link_answers(
    ch: &clickhouse::Client,
    answers: Option<&[(&str, &str, u32)]>,
) -> anyhow::Result<()> {
    let fresh = match answers {
        // One string of `<dvm hex><request hex><created_at>` words: parsing it is about four times
        // cheaper for the server than the same answers as an array of tuples (60 000 answers:
        // 0.27 s against 1.1 s on the stand-in), and a backfill links that many every step.
        Some(_) => {
            "SELECT toFixedString(unhex(substring(m, 1, 64)), 32) AS fd, \
                    toFixedString(unhex(substring(m, 65, 64)), 32) AS fr, \
                    max(toUInt32OrZero(substring(m, 129))) AS nl \
             FROM (SELECT arrayJoin(splitByChar(' ', {answers:String})) AS m) \
             WHERE length(m) > 128 GROUP BY fd, fr"
        }
        None => {
            "SELECT pubkey AS fd, request_id AS fr, toUInt32(max(created_at)) AS nl FROM events_raw \
             WHERE role IN ('result', 'feedback') AND notEmpty(request_id) GROUP BY fd, fr"
        }
    };
    // Every live row is found by one hash join with the fresh pairs on the build side, a single
    // read of `answered_pairs`: 2.5 times cheaper than `(dvm, request_id) IN fresh` (at 2.4M
    // pairs: 0.27 s against 0.68 s for 25 000 answers), which hashes a tuple per row and parses
    // the answers twice. A fresh pair without a row joins to zeros (`join_use_nulls = 0`).
    let sql = format!(
        "INSERT INTO answered_pairs (hour, dvm, request_id, last_at, sign) \
         WITH fresh AS ({fresh}) \
         SELECT toDateTime(intDiv(x.1, 3600) * 3600), fd, fr, x.1, x.2 \
         FROM ( \
           SELECT f.fd AS fd, f.fr AS fr, any(f.nl) AS nl, sum(p.sign) AS live, \
                  toUInt32(if(live > 0, sum(p.sign * p.last_at), 0)) AS ol \
           FROM answered_pairs AS p RIGHT JOIN fresh AS f ON p.dvm = f.fd AND p.request_id = f.fr \
           GROUP BY fd, fr \
         ) \
         ARRAY JOIN if(ol = 0, [(nl, toInt8(1))], [(ol, toInt8(-1)), (nl, toInt8(1))]) AS x \
         WHERE nl > ol"
    );
    ch.query(&sql)
        .with_setting("join_use_nulls", "0")
        .param("answers", answer_words(answers.unwrap_or_default()))
        .execute()
        .await
        .context("linking answers to their DVMs")
}

/// The answers as `link_answers` sends them: space-separated `<dvm hex><request hex><created_at>`
/// words, one per (DVM, request) with its newest answer (a DVM's feedback and result usually
/// come together: half the words for the server to parse). Anything that is not two 64-digit
/// lowercase hex ids is left out, so every word parses.
fn answer_words(answers: &[(&str, &str, u32)]) -> String {
    let id = |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut newest: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for &(dvm, request, at) in answers.iter().filter(|(d, r, _)| id(d) && id(r)) {
        let e = newest.entry((dvm, request)).or_insert(at);
        *e = (*e).max(at);
    }
    let mut out = String::with_capacity(newest.len() * 140);
    for ((dvm, request), at) in newest {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(dvm);
        out.push_str(request);
        out.push_str(&at.to_string());
    }
    out
}

/// Hours of the requests `ids` (lowercase hex) names.
async fn hours_of(ch: &clickhouse::Client, ids: &[String]) -> clickhouse::error::Result<Vec<u32>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    ch.query(
        "SELECT DISTINCT toUInt32(toStartOfHour(created_at)) FROM events_raw \
         WHERE role = 'request' AND event_id IN (SELECT toFixedString(unhex(arrayJoin({ids:Array(String)})), 32))",
    )
    .param("ids", ids.to_vec())
    .fetch_all()
    .await
}

/// Every hour with requests still inside the tables' TTL.
async fn all_hours(ch: &clickhouse::Client, now: u32) -> clickhouse::error::Result<Vec<u32>> {
    ch.query(
        "SELECT DISTINCT toUInt32(toStartOfHour(created_at)) AS h FROM events_raw \
         WHERE role = 'request' AND created_at >= toDateTime({since:UInt32}) ORDER BY h",
    )
    .param("since", now.saturating_sub(KEEP_SECS))
    .fetch_all()
    .await
}

/// The finalizer's two clocks (`job_ledger_clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Every event stored before it is linked into the job ledger.
    Jobs,
    /// Every answer stored before it is counted in `answered_pairs`. Moves more often than
    /// [`Clock::Jobs`]: answers are linked in a loop of their own, also while a long pass relinks.
    Answers,
}

impl Clock {
    fn name(self) -> &'static str {
        match self {
            Clock::Jobs => "jobs",
            Clock::Answers => "answers",
        }
    }
}

/// The moment the finalizer's work of `clock` is complete to. `None` before the first pass.
pub async fn as_of_clock(ch: &clickhouse::Client, clock: Clock) -> clickhouse::error::Result<Option<u32>> {
    let t: u32 = ch
        .query("SELECT max(as_of) FROM job_ledger_clock WHERE clock = {clock:String}")
        .param("clock", clock.name())
        .fetch_one()
        .await?;
    Ok((t > 0).then_some(t))
}

/// The moment the job ledger is complete to ([`Clock::Jobs`]).
pub async fn as_of(ch: &clickhouse::Client) -> clickhouse::error::Result<Option<u32>> {
    as_of_clock(ch, Clock::Jobs).await
}

async fn move_clock(ch: &clickhouse::Client, clock: Clock, as_of: u32, version: u64) -> anyhow::Result<()> {
    ch.query(
        "INSERT INTO job_ledger_clock (clock, as_of, version) \
         VALUES ({clock:String}, {as_of:UInt32}, {version:UInt64})",
    )
    .param("clock", clock.name())
    .param("as_of", as_of)
    .param("version", version)
    .execute()
    .await
    .context("moving the job ledger's clock")
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub as_of: u32,
    pub hours: usize,
    pub touches: usize,
    pub full: bool,
}

/// The finalizer of one process.
pub struct Finalizer {
    pub ch: clickhouse::Client,
    pub redis: ConnectionManager,
    pub names: RedisNames,
    last_version: u64,
    /// Renewed between the steps of a pass, which can outlast the lease's TTL (a full relink of
    /// millions of events): two finalizers at once could move an answered pair twice.
    lease: Option<Lease>,
    /// One answers step at a time in this process (the lease covers other processes): two at
    /// once would take the same answers and move a pair twice.
    answers_turn: Arc<tokio::sync::Mutex<()>>,
}

impl Finalizer {
    pub fn new(ch: clickhouse::Client, redis: ConnectionManager, names: RedisNames) -> Self {
        Finalizer {
            // Background work: one thread per query and yielding to the api's and the ingester's
            // queries, so a backfill's long relinks do not hold the dashboard's refreshes back.
            ch: ch.with_setting("max_threads", "1").with_setting("priority", "10"),
            redis,
            names,
            last_version: 0,
            lease: None,
            answers_turn: Arc::default(),
        }
    }

    /// A second finalizer for the same process, sharing the lease and the answers turn, so
    /// answers can be linked while a long pass runs.
    fn twin(&self) -> Finalizer {
        Finalizer {
            ch: self.ch.clone(),
            redis: self.redis.clone(),
            names: self.names.clone(),
            last_version: 0,
            lease: self.lease.clone(),
            answers_turn: self.answers_turn.clone(),
        }
    }

    /// Counts the answers stored since the last step in `answered_pairs` (every answer when
    /// `all`: a first start or a lost Redis), then moves the answers clock. The answers are moved
    /// aside in one step (as the touches are) and dropped only once counted. Returns whether
    /// every answer stored before the step was taken: when the step took its most, some may still
    /// wait, and the clock stays where it is.
    async fn answers_step(&mut self, all: bool) -> anyhow::Result<bool> {
        let turn = self.answers_turn.clone();
        let _turn = turn.lock().await;
        let started = u32::try_from(crate::telemetry::now_secs()).unwrap_or(u32::MAX);
        let (waiting, linking) = self.names.job_answers();
        let members: Vec<String> = TAKE_TOUCHES
            .key(&waiting)
            .key(&linking)
            .arg(ANSWERS_PER_STEP)
            .invoke_async(&mut self.redis)
            .await?;
        let drained = members.len() < ANSWERS_PER_STEP;
        let t0 = std::time::Instant::now();
        if all || !members.is_empty() {
            self.still_ours().await?;
            let given: Option<Vec<_>> =
                (!all).then(|| members.iter().filter_map(|m| parse_answer(m)).collect());
            link_answers(&self.ch, given.as_deref()).await?;
            self.redis.del::<_, ()>(&linking).await?;
            // The api's cached DVM lists are behind now.
            let _: redis::RedisResult<i64> = self.redis.incr(self.names.data_version(), 1).await;
        }
        if drained {
            move_clock(
                &self.ch,
                Clock::Answers,
                started.saturating_sub(1),
                self.last_version.max(1),
            )
            .await?;
        }
        debug!(
            answers = members.len(),
            all,
            ms = t0.elapsed().as_millis() as u64,
            "answers linked"
        );
        Ok(drained)
    }

    /// Links the answers stored since the last step (nothing before the first whole pass, which
    /// links every answer). Returns whether nothing stored before the step is left waiting.
    pub async fn answers_only(&mut self) -> anyhow::Result<bool> {
        if !self.redis.exists::<_, bool>(self.names.jobs_linked()).await? {
            return Ok(true);
        }
        self.answers_step(false).await
    }

    /// Stops the pass when this process no longer holds the finalizer lease.
    async fn still_ours(&mut self) -> anyhow::Result<()> {
        if let Some(lease) = &self.lease {
            anyhow::ensure!(
                lease.acquire_or_renew(&mut self.redis).await?,
                "lost the job finalizer lease during a pass"
            );
        }
        Ok(())
    }

    fn next_version(&mut self) -> u64 {
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        self.last_version = now_ms.max(self.last_version + 1);
        self.last_version
    }

    /// Links everything touched since the last pass (everything, after a first start or a lost
    /// Redis) and moves the clock. The moment is taken before the touches are read, less a second
    /// for an insert whose touches were still being recorded.
    pub async fn pass(&mut self) -> anyhow::Result<Pass> {
        let now = u32::try_from(crate::telemetry::now_secs()).unwrap_or(u32::MAX);
        let as_of = now.saturating_sub(1);
        let linked: bool = self.redis.exists(self.names.jobs_linked()).await?;
        let (members, hours): (Vec<String>, Vec<u32>) = if linked {
            let members: Vec<String> = TAKE_TOUCHES
                .key(self.names.job_touches())
                .key(self.names.job_touches_linking())
                .arg(TOUCHES_PER_PASS)
                .invoke_async(&mut self.redis)
                .await?;
            let (mut hours, ids) = parse_touches(&members);
            hours.extend(
                hours_of(&self.ch, &ids)
                    .await
                    .context("looking up request hours")?,
            );
            let oldest = now.saturating_sub(KEEP_SECS);
            (
                members,
                hours.into_iter().filter(|&h| h + 3600 > oldest).collect(),
            )
        } else {
            info!("linking every job (first start, or Redis lost its job touches)");
            (Vec::new(), all_hours(&self.ch, now).await?)
        };
        // Answers first (all of them on a full pass). While the relinks below run, [`run`]'s
        // answers loop goes on linking new answers, so answered jobs stay fresh while a backfill
        // makes every hour dirty.
        let _ = self.answers_step(!linked).await?;
        for chunk in hours.chunks(HOURS_PER_STATEMENT) {
            self.still_ours().await?;
            let version = self.next_version();
            let t0 = std::time::Instant::now();
            relink(&self.ch, chunk, version).await?;
            debug!(
                hours = chunk.len(),
                ms = t0.elapsed().as_millis() as u64,
                "jobs relinked"
            );
        }
        // A pass that took its most touches may have left some stored before it: the clock waits
        // for the pass that takes the rest.
        let drained = members.len() < TOUCHES_PER_PASS;
        if drained {
            move_clock(&self.ch, Clock::Jobs, as_of, self.last_version.max(1)).await?;
        }
        if linked {
            self.redis.del::<_, ()>(self.names.job_touches_linking()).await?;
        } else {
            self.redis.set::<_, _, ()>(self.names.jobs_linked(), 1).await?;
        }
        if !hours.is_empty() {
            // The api's cached job answers are behind now.
            let _: redis::RedisResult<i64> = self.redis.incr(self.names.data_version(), 1).await;
        }
        Ok(Pass {
            as_of,
            hours: hours.len(),
            touches: members.len(),
            full: !linked,
        })
    }
}

/// Runs the finalizer while this process holds its lease, until `shutdown`: two loops. The
/// answers loop links new answers every `interval`. The pass loop runs a whole pass (touched
/// hours) every `interval`, or after a pause twice as long as the last pass took when that is
/// longer: a backfill touching every hour makes passes long, and the finalizer then takes at most
/// a third of the time from the ingest, while the answers loop keeps answered jobs fresh.
pub async fn run(mut finalizer: Finalizer, owner: String, interval: Duration, shutdown: CancellationToken) {
    let lease = Lease::new(finalizer.names.jobs_lease(), owner, Duration::from_secs(60));
    finalizer.lease = Some(lease.clone());
    let answers = finalizer.twin();
    let mut redis = finalizer.redis.clone();
    tokio::join!(
        pass_loop(finalizer, lease.clone(), interval, shutdown.clone()),
        answers_loop(answers, lease.clone(), interval, shutdown)
    );
    let _ = lease.release(&mut redis).await;
}

/// How long to wait before the next try: `interval`, doubled by each consecutive failure up to
/// 30 s, so an outage is not a log flood.
fn backoff(interval: Duration, failures: u32) -> Duration {
    interval
        .saturating_mul(1 << failures.min(6))
        .min(Duration::from_secs(30).max(interval))
}

/// Waits `wait`, then says whether this process holds the lease; `None` once shut down.
async fn turn(
    lease: &Lease,
    redis: &mut ConnectionManager,
    wait: Duration,
    shutdown: &CancellationToken,
) -> Option<bool> {
    tokio::select! {
        _ = shutdown.cancelled() => return None,
        _ = tokio::time::sleep(wait) => {}
    }
    match lease.acquire_or_renew(redis).await {
        Ok(ours) => Some(ours),
        Err(err) => {
            warn!(error = %err, "job finalizer: cannot reach Redis");
            Some(false)
        }
    }
}

async fn pass_loop(mut finalizer: Finalizer, lease: Lease, interval: Duration, shutdown: CancellationToken) {
    let mut wait = interval;
    let mut failures = 0u32;
    while let Some(ours) = turn(&lease, &mut finalizer.redis, wait, &shutdown).await {
        wait = backoff(interval, failures);
        if !ours {
            continue;
        }
        let t0 = std::time::Instant::now();
        let passed = finalizer.pass().await;
        ::metrics::histogram!(metrics::PASS_SECONDS).record(t0.elapsed().as_secs_f64());
        let outcome = if passed.is_ok() { "ok" } else { "failed" };
        ::metrics::counter!(metrics::PASSES, "outcome" => outcome).increment(1);
        match passed {
            Ok(p) => {
                failures = 0;
                // The next pass after twice this one's length (at least the interval).
                wait = (t0.elapsed() * 2).max(interval);
                ::metrics::counter!(metrics::HOURS_LINKED).increment(p.hours as u64);
                ::metrics::gauge!(metrics::AS_OF).set(f64::from(p.as_of));
                if p.hours > 0 {
                    info!(
                        hours = p.hours,
                        touches = p.touches,
                        full = p.full,
                        ms = t0.elapsed().as_millis() as u64,
                        "jobs linked"
                    );
                }
            }
            Err(err) => {
                failures += 1;
                wait = backoff(interval, failures);
                warn!(error = %format!("{err:#}"), "job finalizer pass failed; retrying");
            }
        }
    }
}

async fn answers_loop(
    mut finalizer: Finalizer,
    lease: Lease,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    let mut wait = interval;
    while let Some(ours) = turn(&lease, &mut finalizer.redis, wait, &shutdown).await {
        wait = interval;
        if !ours {
            continue;
        }
        match finalizer.answers_only().await {
            Ok(drained) => {
                failures = 0;
                // More were waiting than one step takes: the next step starts at once.
                if !drained {
                    wait = Duration::ZERO;
                }
            }
            Err(err) => {
                failures += 1;
                wait = backoff(interval, failures);
                warn!(error = %format!("{err:#}"), "job finalizer: linking answers failed; retrying");
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, id: u8, created_at: u32, request: u8) -> RawEventRow {
        let mut r = RawEventRow::blank([id; 32], [9; 32], 5300, created_at, role);
        r.request_id = [request; 32];
        if role == "deletion" {
            r.targets = vec![[request; 32]];
        }
        r
    }

    #[test]
    fn answer_words_keep_only_well_formed_ids() {
        let (d, r, r2) = ("ab".repeat(32), "0f".repeat(32), "10".repeat(32));
        let (upper, short, spaced) = ("AB".repeat(32), "0f".repeat(31), format!("{} x", "a".repeat(61)));
        let answers = [
            (d.as_str(), r2.as_str(), 7),
            (upper.as_str(), r.as_str(), 8),
            (d.as_str(), short.as_str(), 9),
            (spaced.as_str(), r.as_str(), 10),
            (d.as_str(), r.as_str(), u32::MAX),
            (d.as_str(), r.as_str(), 11),
        ];
        // One word per pair, with its newest answer.
        assert_eq!(answer_words(&answers), format!("{d}{r}{} {d}{r2}7", u32::MAX));
        assert_eq!(answer_words(&[]), "");
    }

    #[test]
    fn touches_name_hours_when_known_and_ids_otherwise() {
        let mut recent = RecentRequests::default();
        let rows = vec![
            row("request", 1, 7_200 + 59, 0),
            row("result", 2, 9_000, 1),
            row("feedback", 3, 9_000, 4),
            row("feedback", 5, 9_000, 0),
            row("deletion", 6, 9_000, 7),
            row("profile", 8, 9_000, 1),
        ];
        let t = touches(&rows, &mut recent);
        let want: BTreeSet<String> = [
            "h7200".to_owned(),
            format!("r{}", hex::encode([4u8; 32])),
            format!("r{}", hex::encode([7u8; 32])),
        ]
        .into();
        assert_eq!(t, want, "an answer without a request id touches nothing");
        // A later batch answering the remembered request names its hour.
        let t = touches(&[row("result", 9, 9_999, 1)], &mut recent);
        assert_eq!(t, ["h7200".to_owned()].into());
    }

    #[test]
    fn answers_go_through_redis_and_back() {
        let mut res = row("result", 2, 9_000, 1);
        res.pubkey = [0xab; 32];
        let rows = vec![row("request", 1, 7_200, 0), res, row("feedback", 3, 9_001, 0)];
        let a = answers(&rows);
        assert_eq!(
            a.len(),
            1,
            "requests and answers without a request id are not answers"
        );
        let m = a.iter().next().expect("one");
        let d = hex::encode([0xab; 32]);
        let r = hex::encode([1u8; 32]);
        assert_eq!(parse_answer(m), Some((d.as_str(), r.as_str(), 9_000)));
        // The same DVM's feedback and result to one request: one member, the newest.
        let mut fb = row("feedback", 4, 9_500, 1);
        fb.pubkey = [0xab; 32];
        let mut early = row("feedback", 5, 8_000, 1);
        early.pubkey = [0xab; 32];
        let a = answers(&[rows[1].clone(), fb, early, row("result", 6, 8_000, 1)]);
        let parsed: BTreeSet<_> = a.iter().filter_map(|m| parse_answer(m)).collect();
        let other = hex::encode([9u8; 32]);
        assert_eq!(
            parsed,
            [
                (d.as_str(), r.as_str(), 9_500),
                (other.as_str(), r.as_str(), 8_000)
            ]
            .into()
        );
        for junk in [
            String::new(),
            "a".into(),
            format!("a{}", "0".repeat(128)),
            format!("a{}-1", "0".repeat(128)),
            format!("a{}99999999999", "0".repeat(128)),
            format!("a{}1", "A".repeat(128)),
            format!("a{}1", "é".repeat(64)),
            format!("h{}1", "0".repeat(128)),
        ] {
            assert_eq!(parse_answer(&junk), None, "{junk:?}");
        }
    }

    #[test]
    fn hostile_touch_members_are_dropped() {
        let good = "a".repeat(64);
        let members: Vec<String> = vec![
            "h3600".into(),
            "h3601".into(),
            "h-1".into(),
            "h99999999999".into(),
            format!("r{good}"),
            format!("r{}", "A".repeat(64)),
            format!("r{}", "g".repeat(64)),
            "r00".into(),
            format!("r{good}x"),
            "x".repeat(100_000),
            String::new(),
            "hé".into(),
        ];
        let (hours, ids) = parse_touches(&members);
        assert_eq!(hours, [3600u32].into());
        assert_eq!(ids, vec![good]);
    }
}
