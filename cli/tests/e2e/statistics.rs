//! The reference test of docs/statistics.md. A deterministic corpus of more than 50,000 signed
//! events over 45 days goes straight into the events stream (with duplicates, out of order) and
//! through the ingester into ClickHouse. Raw events older than 31 days are then removed by TTL
//! (forced with OPTIMIZE ... FINAL), so every all-time fact and the monthly history must come from
//! what outlives raw events. Every number of every statistics endpoint, for every window, is then
//! compared with an independent plain-Rust computation over the same events (`reference/`), using
//! each answer's own `timestamp` as `now`. Finally the whole corpus is replayed in other batch sizes
//! and everything is compared again.

use dvmdash_testkit as common;
mod reference;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dvmdash_core::dto::{
    Competition, ContextvmTraffic, DvmList, DvmStats, DvmSummary, GlobalStats, KindList, KindStats,
    KindSummary, KindsUsage, MonthlyHistory, Payments, Performance, Prices, Reach, ReasonCount,
    RelayCoverage, TimeRange, WhatsNew, parse_rfc3339,
};
use dvmdash_core::stream::{EventStream, NewEntry};
use dvmdash_core::telemetry::now_secs;
use dvmdash_testkit::{isolated, wait_until};
use reference::corpus::{self, Corpus, DAY, Entry};
use reference::{Part, Reference, row_key};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const SEED: u64 = 0x5EED_D0E5;
/// Requests in flight against the api (2-core machines).
const PARALLEL: usize = 4;
/// At most this many difference lines are printed per failure.
const MAX_LINES: usize = 80;
/// Differences shown for one answer.
const LINES_PER_ANSWER: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_statistic_matches_the_reference() {
    let started = Instant::now();
    let gen_now = now_secs();
    let corpus = corpus::generate(SEED, gen_now);
    let mut reference = Reference::new(&corpus.events);
    let distinct = reference.evs.len();
    assert!(
        distinct >= 50_000,
        "the corpus holds {distinct} distinct stored events, want at least 50,000"
    );
    let entries = corpus::stream_entries(&corpus.events, gen_now, SEED ^ 1, true);
    eprintln!(
        "corpus: {distinct} distinct events ({} requests, {} results, {} feedback, {} announcements, \
         {} profiles, {} zap receipts, {} deletions), {} DVMs, {} job kinds, {} stream entries with duplicates; \
         generated in {:?}",
        reference.count(Part::Request),
        reference.count(Part::Result),
        reference.count(Part::Feedback),
        reference.count(Part::Announcement),
        reference.count(Part::Profile),
        reference.count(Part::Zap),
        reference.count(Part::Deletion),
        reference.dvm_hexes().len(),
        reference.seen_kinds().len(),
        entries.len(),
        started.elapsed()
    );

    let (redis, clickhouse) = isolated();
    let stack = common::start(common::args(redis, clickhouse, vec![])).await;

    // 1. Feed the stream directly: duplicates across batches, answers before their requests.
    let last = xadd(&stack, &entries, &[1000]).await;
    reference.add_deliveries(entries.iter().map(|e| (e.json.as_str(), e.relay)));
    drop(entries);
    wait_drained(&stack, &last, "the ingester to consume the corpus").await;
    trim_stream(&stack).await;
    let recent_cut = gen_now - 29 * DAY;
    assert_stored(&stack, &reference, recent_cut, "after ingestion").await;
    eprintln!("ingested after {:?}", started.elapsed());

    // 2. TTL: raw events collected more than 30 days ago go; rollups and all-time facts stay.
    drop_expired(&stack).await;
    let ttl_done = now_secs();
    eprintln!("TTL applied after {:?}", started.elapsed());

    // 3. The api has every event.
    let want_totals = totals(&reference.monthly());
    let monthly_url = format!("{}{}", stack.base, Ep::Monthly.path());
    wait_until(
        "the api to count every event (monthly totals)",
        Duration::from_secs(90),
        || {
            let url = monthly_url.clone();
            async move {
                let (m, status) = common::get_json::<MonthlyHistory>(&url).await;
                let m = m.ok_or_else(|| format!("HTTP {status} or an unreadable answer"))?;
                let got = totals(&m);
                if got == want_totals {
                    Ok(())
                } else {
                    Err(format!(
                        "(requests, results, feedback) {got:?}, want {want_totals:?}"
                    ))
                }
            }
        },
    )
    .await;

    // The stack's collector records when it began watching the live-only kinds (ContextVM).
    reference.live_since = live_watch_since(&stack).await;
    assert!(
        reference.live_since.is_some_and(|t| t >= gen_now),
        "the collector recorded when live watching began: {:?}",
        reference.live_since
    );

    // 4. Every endpoint, every window, computed after TTL.
    let report = round(&stack, &reference, &corpus, Some(ttl_done)).await;
    report.assert_clean("first pass");
    eprintln!(
        "first pass: {} answers checked ({} from before TTL) after {:?}",
        report.answers,
        report.stale,
        started.elapsed()
    );
    assert_new_paths_are_exercised(&stack).await;

    // 5. Replay everything in other batch sizes: nothing may change.
    let replay = corpus::stream_entries(&corpus.events, gen_now, SEED ^ 2, false);
    let last = xadd(&stack, &replay, &[1, 13, 500, 2500]).await;
    // Replayed entries are deliveries too: coverage may grow, nothing else may change.
    reference.add_deliveries(replay.iter().map(|e| (e.json.as_str(), e.relay)));
    drop(replay);
    wait_drained(&stack, &last, "the ingester to consume the replay").await;
    trim_stream(&stack).await;
    let replayed_at = now_secs();
    assert_stored(&stack, &reference, recent_cut, "after the replay").await;
    let old = old_raw_rows(&stack).await;
    assert_eq!(
        old, 0,
        "the replay put {old} events older than 31 days back into events_raw: the gate must know \
         every id ever stored"
    );
    // Answers cached from before the replay are fetched again until recomputed.
    let report = round(&stack, &reference, &corpus, Some(replayed_at)).await;
    report.assert_clean("after the replay");
    eprintln!(
        "after the replay: {} answers checked ({} from before the replay) in {:?} in all",
        report.answers,
        report.stale,
        started.elapsed()
    );
    stack.stop().await;
}

// ----- feeding and storage -----

/// Appends every entry, in pipelines of the given sizes (cycled); returns the last entry id.
async fn xadd(stack: &common::Stack, entries: &[Entry], batch_sizes: &[usize]) -> String {
    let events = EventStream::new(&stack.redis.names());
    let mut conn = stack.redis_conn().await;
    let mut last = String::new();
    let mut rest = entries;
    let mut i = 0;
    while !rest.is_empty() {
        let n = batch_sizes[i % batch_sizes.len()].min(rest.len());
        let (batch, tail) = rest.split_at(n);
        let batch: Vec<NewEntry<'_>> = batch
            .iter()
            .map(|e| NewEntry {
                id_hex: "",
                json: &e.json,
                relay: e.relay,
                seen_ms: e.seen_ms,
            })
            .collect();
        let ids = events
            .append_each(&mut conn, &batch)
            .await
            .expect("append a batch");
        if let Some(id) = ids.last() {
            last.clone_from(id);
        }
        rest = tail;
        i += 1;
    }
    last
}

/// Waits until the ingester group has read up to `last` and acknowledged everything.
async fn wait_drained(stack: &common::Stack, last: &str, what: &str) {
    let events = EventStream::new(&stack.redis.names());
    wait_until(what, Duration::from_secs(300), || {
        let events = events.clone();
        async move {
            let mut conn = stack.redis_conn().await;
            let g = events.group_info(&mut conn).await.map_err(|e| e.to_string())?;
            let Some(delivered) = g.last_delivered else {
                return Err("no ingester group yet".to_owned());
            };
            if delivered == last && g.pending == 0 {
                Ok(())
            } else {
                Err(format!(
                    "delivered up to {delivered} of {last}, {} pending, lag {:?}",
                    g.pending, g.lag
                ))
            }
        }
    })
    .await;
}

/// Frees the consumed entries (everything was delivered and acknowledged).
async fn trim_stream(stack: &common::Stack) {
    let mut conn = stack.redis_conn().await;
    EventStream::new(&stack.redis.names())
        .trim_acknowledged(&mut conn)
        .await
        .expect("XTRIM");
}

/// Each event is one row of events_raw (the gate), and every recent event is there.
async fn assert_stored(stack: &common::Stack, r: &Reference, cut: u64, when: &str) {
    let ch = stack.clickhouse.client();
    let (rows, ids): (u64, u64) = ch
        .query("SELECT count(), uniqExact(event_id) FROM events_raw")
        .fetch_one()
        .await
        .expect("count rows");
    assert_eq!(
        rows, ids,
        "{when}: events_raw holds {rows} rows for {ids} event ids: an event was inserted twice"
    );
    let recent: u64 = ch
        .query(&format!(
            "SELECT count() FROM events_raw WHERE toUInt32(created_at) >= {cut}"
        ))
        .fetch_one()
        .await
        .expect("count recent rows");
    let want = r.stored_since(cut);
    assert_eq!(
        recent, want,
        "{when}: events_raw holds {recent} events created in the last 29 days, the corpus {want}"
    );
}

async fn old_raw_rows(stack: &common::Stack) -> u64 {
    stack
        .clickhouse
        .client()
        .query("SELECT count() FROM events_raw WHERE created_at < now() - INTERVAL 31 DAY")
        .fetch_one()
        .await
        .expect("count old rows")
}

/// Forces merges so the 30-day TTL (on received_at, set near created_at for old events) applies.
/// The corpus's zaps and deletions reach every path of the payments statistics and of cancelled
/// jobs, so the comparison above is not one of zeros: linked and unlinked payments, asks from both
/// paths, receipts that pay nothing, cancelled jobs beside concluded ones.
async fn assert_new_paths_are_exercised(stack: &common::Stack) {
    let url = format!("{}/api/stats/payments?timeRange=30d&groupBy=dvm", stack.base);
    let (p, status) = common::get_json::<Payments>(&url).await;
    let p = p.unwrap_or_else(|| panic!("payments: HTTP {status}"));
    let stored: u64 = stack
        .clickhouse
        .client()
        .query("SELECT count() FROM events_raw WHERE role = 'zap_receipt'")
        .fetch_one()
        .await
        .expect("count zap receipts");
    eprintln!(
        "payments over 30 days: {} zaps ({} linked to {} jobs), {} msat from {} senders; {} receipts stored",
        p.zaps, p.zaps_linked, p.jobs_paid, p.paid_msat, p.senders, stored
    );
    assert!(
        p.zaps >= 100 && p.zaps_linked >= 50 && p.zaps_linked < p.zaps,
        "{p:?}"
    );
    assert!(
        stored >= p.zaps + 30,
        "receipts paying nothing or no DVM are stored too: {stored}"
    );
    assert!(
        p.rows.iter().filter(|r| r.asked_msat > 0).count() >= 3,
        "{:?}",
        p.rows
    );
    assert!(
        p.rows.iter().any(|r| r.zaps > 0 && r.jobs_asked > 0),
        "{:?}",
        p.rows
    );
    let url = format!("{}/api/stats/performance?timeRange=30d&groupBy=all", stack.base);
    let (perf, status) = common::get_json::<Performance>(&url).await;
    let perf = perf.unwrap_or_else(|| panic!("performance: HTTP {status}"));
    let o = &perf.rows[0].outcomes;
    eprintln!("outcomes over 30 days: {o:?}");
    assert!(o.cancelled >= 20 && o.success > o.cancelled, "{o:?}");
    // ContextVM: every shape the corpus holds shows up (the reference checks the numbers).
    let url = format!("{}/api/contextvm/traffic?timeRange=7d", stack.base);
    let (t, status) = common::get_json::<ContextvmTraffic>(&url).await;
    let t = t.unwrap_or_else(|| panic!("contextvm traffic: HTTP {status}"));
    eprintln!(
        "contextvm over 7 days: {} calls, {} responses ({} errors, {} answered) across {} servers, seen live since {:?}",
        t.calls,
        t.responses,
        t.errors,
        t.answered,
        t.servers.len(),
        t.seen_live_since
    );
    assert!(
        t.calls >= 200 && t.errors > 0 && t.answered < t.responses && t.servers.len() >= 3,
        "{t:?}"
    );
    assert!(
        t.servers[0].server_name.is_some(),
        "the busiest server is a named DVM"
    );
}

async fn drop_expired(stack: &common::Stack) {
    let before = old_raw_rows(stack).await;
    eprintln!("{before} raw events older than 31 days before OPTIMIZE");
    let ch = stack.clickhouse.client();
    wait_until(
        "OPTIMIZE TABLE events_raw FINAL to drop raw events older than 30 days",
        Duration::from_secs(90),
        || {
            let ch = ch.clone();
            async move {
                ch.query("OPTIMIZE TABLE events_raw FINAL")
                    .execute()
                    .await
                    .map_err(|e| format!("OPTIMIZE failed: {e}"))?;
                let old: u64 = ch
                    .query("SELECT count() FROM events_raw WHERE created_at < now() - INTERVAL 31 DAY")
                    .fetch_one()
                    .await
                    .map_err(|e| e.to_string())?;
                if old == 0 {
                    Ok(())
                } else {
                    Err(format!("{old} raw events older than 31 days remain"))
                }
            }
        },
    )
    .await;
}

fn totals(m: &MonthlyHistory) -> (u64, u64, u64) {
    m.months.iter().fold((0, 0, 0), |(a, b, c), r| {
        (a + r.requests, b + r.results, c + r.feedback)
    })
}

// ----- endpoints -----

#[derive(Clone, Debug, Default)]
struct ListQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    search: Option<String>,
    sort: Option<&'static str>,
    order: Option<&'static str>,
}

impl ListQuery {
    fn all() -> Self {
        ListQuery {
            limit: Some(1000),
            ..Default::default()
        }
    }

    fn sorted(sort: &'static str, order: &'static str) -> Self {
        ListQuery {
            limit: Some(1000),
            sort: Some(sort),
            order: Some(order),
            ..Default::default()
        }
    }

    fn query_string(&self) -> String {
        let mut s = String::new();
        if let Some(v) = self.limit {
            s.push_str(&format!("&limit={v}"));
        }
        if let Some(v) = self.offset {
            s.push_str(&format!("&offset={v}"));
        }
        if let Some(v) = &self.search {
            s.push_str(&format!("&search={v}"));
        }
        if let Some(v) = self.sort {
            s.push_str(&format!("&sort={v}"));
        }
        if let Some(v) = self.order {
            s.push_str(&format!("&order={v}"));
        }
        s
    }
}

async fn live_watch_since(stack: &common::Stack) -> Option<u64> {
    let mut conn = redis::Client::open(stack.redis.redis_url.expose())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("GET")
        .arg(stack.redis.names().live_watch_since())
        .query_async(&mut conn)
        .await
        .expect("reading the live watch start")
}

#[derive(Clone, Debug)]
enum Ep {
    Global(TimeRange),
    DvmList(TimeRange, ListQuery),
    /// Window, the id in the path (hex or npub), the hex pubkey.
    Dvm(TimeRange, String, String),
    KindList(TimeRange, ListQuery),
    Kind(TimeRange, u16),
    Performance(TimeRange, &'static str),
    Reach(TimeRange),
    Competition(TimeRange),
    Prices(TimeRange, &'static str),
    Payments(TimeRange, &'static str),
    Coverage(TimeRange),
    Contextvm(TimeRange),
    New(TimeRange),
    Monthly,
    KindsUsage,
    /// Must answer 404.
    Missing(String),
}

impl Ep {
    fn path(&self) -> String {
        match self {
            Ep::Global(r) => format!("/api/stats/global/latest?timeRange={r}"),
            Ep::DvmList(r, q) => format!("/api/dvms?timeRange={r}{}", q.query_string()),
            Ep::Dvm(r, id, _) => format!("/api/stats/dvm/{id}?timeRange={r}"),
            Ep::KindList(r, q) => format!("/api/kinds?timeRange={r}{}", q.query_string()),
            Ep::Kind(r, k) => format!("/api/stats/kind/{k}?timeRange={r}"),
            Ep::Performance(r, g) => format!("/api/stats/performance?timeRange={r}&groupBy={g}"),
            Ep::Reach(r) => format!("/api/stats/reach?timeRange={r}"),
            Ep::Competition(r) => format!("/api/stats/competition?timeRange={r}"),
            Ep::Prices(r, g) => format!("/api/stats/prices?timeRange={r}&groupBy={g}"),
            Ep::Payments(r, g) => format!("/api/stats/payments?timeRange={r}&groupBy={g}"),
            Ep::Coverage(r) => format!("/api/relays/coverage?timeRange={r}"),
            Ep::Contextvm(r) => format!("/api/contextvm/traffic?timeRange={r}"),
            Ep::New(r) => format!("/api/stats/new?timeRange={r}"),
            Ep::Monthly => "/api/history/monthly".to_owned(),
            Ep::KindsUsage => "/api/kinds/usage".to_owned(),
            Ep::Missing(p) => p.clone(),
        }
    }
}

/// Every endpoint for every window: all DVMs, all kinds, lists with limit=1000, plus paging,
/// sorting, search, npub lookup and 404s.
fn endpoints(r: &Reference, c: &Corpus) -> Vec<Ep> {
    let dvms = r.dvm_hexes();
    let kinds = r.seen_kinds();
    let mut eps = Vec::new();
    for range in TimeRange::ALL {
        eps.push(Ep::Global(range));
        eps.push(Ep::DvmList(range, ListQuery::all()));
        eps.push(Ep::KindList(range, ListQuery::all()));
        for hex in &dvms {
            eps.push(Ep::Dvm(range, hex.clone(), hex.clone()));
        }
        for &k in &kinds {
            eps.push(Ep::Kind(range, k));
        }
        for g in ["dvm", "kind", "dvm_kind", "all"] {
            eps.push(Ep::Performance(range, g));
        }
        eps.push(Ep::Reach(range));
        eps.push(Ep::Competition(range));
        for g in ["dvm", "kind"] {
            eps.push(Ep::Prices(range, g));
            eps.push(Ep::Payments(range, g));
        }
        eps.push(Ep::New(range));
        eps.push(Ep::Coverage(range));
        eps.push(Ep::Contextvm(range));
    }
    let (month, day) = (TimeRange::Month, TimeRange::Day);
    let vertex = &c.dvm_hex[corpus::VERTEX];
    let vertex_npub = r.npub_of(vertex).expect("vertex is known");
    eps.extend([
        Ep::DvmList(
            month,
            ListQuery {
                limit: Some(7),
                offset: Some(7),
                sort: Some("total_events"),
                order: Some("desc"),
                ..Default::default()
            },
        ),
        Ep::DvmList(month, ListQuery::sorted("total_requests", "asc")),
        Ep::DvmList(month, ListQuery::sorted("total_feedback", "desc")),
        Ep::DvmList(day, ListQuery::sorted("total_responses", "desc")),
        // Name, case-insensitive, with the default limit.
        Ep::DvmList(
            month,
            ListQuery {
                search: Some("FORGE".to_owned()),
                ..Default::default()
            },
        ),
        Ep::DvmList(
            month,
            ListQuery {
                search: Some(vertex_npub.clone()),
                ..ListQuery::all()
            },
        ),
        Ep::DvmList(
            month,
            ListQuery {
                search: Some(vertex[..12].to_uppercase()),
                ..ListQuery::all()
            },
        ),
        Ep::KindList(
            month,
            ListQuery {
                limit: Some(5),
                offset: Some(5),
                sort: Some("total_requests"),
                order: Some("desc"),
                ..Default::default()
            },
        ),
        Ep::KindList(month, ListQuery::sorted("kind", "asc")),
        Ep::KindList(month, ListQuery::sorted("total_responses", "desc")),
        Ep::KindList(day, ListQuery::sorted("num_supporting_dvms", "desc")),
        Ep::KindList(
            month,
            ListQuery {
                search: Some("DISCOVERY".to_owned()),
                ..Default::default()
            },
        ),
        Ep::KindList(
            month,
            ListQuery {
                search: Some("5300".to_owned()),
                ..ListQuery::all()
            },
        ),
        Ep::Dvm(month, vertex_npub, vertex.clone()),
        Ep::Missing(format!("/api/stats/dvm/{}?timeRange=30d", c.customer_only)),
        Ep::Missing(format!("/api/stats/dvm/{}?timeRange=30d", c.nobody)),
        Ep::Missing("/api/stats/kind/5123?timeRange=30d".to_owned()),
        Ep::Monthly,
        Ep::KindsUsage,
    ]);
    eps
}

struct Got {
    ep: Ep,
    status: u16,
    body: String,
    /// The api's `X-Cache` header (`hit` or `miss`), to tell a stale cached answer from wrong data.
    cache: String,
    /// Unix seconds before sending and after the answer.
    before: u64,
    after: u64,
}

async fn fetch_all(base: &str, eps: Vec<Ep>) -> Vec<Got> {
    let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut set = tokio::task::JoinSet::new();
    let n = eps.len();
    for (i, ep) in eps.into_iter().enumerate() {
        let gate = gate.clone();
        let url = format!("{base}{}", ep.path());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            // The api limits requests per client address: wait and retry on 429.
            let mut attempts = 0;
            let (r, before, after) = loop {
                let before = now_secs();
                let r = dvmdash_testkit::http::send("GET", &url, &[], "").await;
                let after = now_secs();
                attempts += 1;
                if r.status == 429 && attempts < 100 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                break (r, before, after);
            };
            let cache = r
                .head
                .lines()
                .find_map(|l| l.strip_prefix("x-cache: "))
                .unwrap_or("none")
                .to_owned();
            (
                i,
                Got {
                    ep,
                    status: r.status,
                    body: r.body,
                    cache,
                    before,
                    after,
                },
            )
        });
    }
    let mut out: Vec<Option<Got>> = (0..n).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        let (i, got) = done.expect("fetch task");
        out[i] = Some(got);
    }
    out.into_iter()
        .map(|g| g.expect("every fetch finished"))
        .collect()
}

/// When the answer was computed (its `timestamp`), for answers that carry one.
fn computed_at(g: &Got) -> Option<u64> {
    let v: Value = serde_json::from_str(&g.body).ok()?;
    parse_rfc3339(v.get("timestamp")?.as_str()?)
}

/// Fetches every endpoint; with `fresh_after` (a second at which the data was complete), answers
/// computed in or before that second (served from the cache) are fetched again until recomputed, for
/// up to a minute. The same second counts as before: answers carry whole seconds, and one computed
/// early in the second the last insert landed in missed it (seen as a whole 1h answer ~10% short).
async fn round(stack: &common::Stack, r: &Reference, c: &Corpus, fresh_after: Option<u64>) -> Report {
    let mut got = fetch_all(&stack.base, endpoints(r, c)).await;
    if let Some(fresh) = fresh_after {
        for _ in 0..12 {
            let stale: Vec<usize> = (0..got.len())
                .filter(|&i| computed_at(&got[i]).is_some_and(|t| t <= fresh))
                .collect();
            if stale.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            let again = fetch_all(&stack.base, stale.iter().map(|&i| got[i].ep.clone()).collect()).await;
            for (i, g) in stale.into_iter().zip(again) {
                got[i] = g;
            }
        }
    }
    let mut checker = Checker::new(r, fresh_after);
    for g in &got {
        checker.check(g);
    }
    let mut report = checker.report;
    if !report.wrong.is_empty() {
        report.diagnosis = recheck(stack, r, &got, &report.wrong).await;
    }
    report
}

/// For a failure report: what the database holds right now, then the wrong answers fetched again at
/// once and once the cache can no longer hold them (past its TTL and refresh bound). Right on the
/// last fetch means an answer computed before the data was complete was served; still wrong means
/// the data or the query; rollups behind `events_raw` mean the materialized views lag the inserts.
async fn recheck(stack: &common::Stack, r: &Reference, got: &[Got], wrong: &[usize]) -> Vec<String> {
    let mut lines = vec![rollups_against_raw(stack).await];
    let eps: Vec<Ep> = wrong.iter().map(|&i| got[i].ep.clone()).collect();
    let immediate = Duration::ZERO;
    let later = Duration::from_secs(dvmdash_api::Config::default().cache_ttl_secs + 15);
    for wait in [immediate, later] {
        tokio::time::sleep(wait).await;
        let again = fetch_all(&stack.base, eps.clone()).await;
        let mut checker = Checker::new(r, None);
        for g in &again {
            checker.check(g);
        }
        let hits = again.iter().filter(|g| g.cache == "hit").count();
        lines.push(format!(
            "diagnosis: fetched the {} wrong answers again after {wait:?} ({hits} cache hits): {} still wrong ({})",
            wrong.len(),
            checker.report.wrong.len(),
            checker.report.lines.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
        ));
    }
    lines
}

/// Events of the last two days per role in the hourly rollup against `events_raw`.
async fn rollups_against_raw(stack: &common::Stack) -> String {
    let ch = stack.clickhouse.client();
    let from = now_secs() / 3600 * 3600 - 2 * DAY;
    let rollup: Result<Vec<(String, u64)>, _> = ch
        .query(&format!(
            "SELECT toString(role), toUInt64(sum(events)) FROM stats_hourly \
             WHERE hour >= toDateTime({from}) GROUP BY role ORDER BY role"
        ))
        .fetch_all()
        .await;
    let raw: Result<Vec<(String, u64)>, _> = ch
        .query(&format!(
            "SELECT toString(role), count() FROM events_raw \
             WHERE created_at >= toDateTime({from}) GROUP BY role ORDER BY role"
        ))
        .fetch_all()
        .await;
    format!("diagnosis: events of the last two days per role: stats_hourly {rollup:?}, events_raw {raw:?}")
}

// ----- comparison -----

#[derive(Default)]
struct Report {
    lines: Vec<String>,
    answers: usize,
    /// Answers computed in or before `fresh_after` even after refetching (served from the cache).
    stale: usize,
    /// Indexes of the answers with differences.
    wrong: Vec<usize>,
    /// What a failure's recheck found, shown before the differences.
    diagnosis: Vec<String>,
}

impl Report {
    fn assert_clean(&self, when: &str) {
        if self.lines.is_empty() {
            return;
        }
        let shown: Vec<&str> = self.lines.iter().take(MAX_LINES).map(String::as_str).collect();
        panic!(
            "{when}: {} wrong answers of {}\n{}\ndifferences between the api and docs/statistics.md \
             (got, then expected):\n{}{}",
            self.wrong.len(),
            self.answers,
            self.diagnosis.join("\n"),
            shown.join("\n"),
            if self.lines.len() > MAX_LINES {
                format!("\n... and {} more", self.lines.len() - MAX_LINES)
            } else {
                String::new()
            }
        );
    }
}

type Memo<T> = HashMap<(u64, TimeRange), Rc<T>>;

struct Checker<'a> {
    r: &'a Reference,
    fresh_after: Option<u64>,
    report: Report,
    dvm_lists: Memo<Vec<DvmSummary>>,
    kind_lists: Memo<Vec<KindSummary>>,
    dvm_stats: Memo<BTreeMap<String, DvmStats>>,
    kind_stats: Memo<BTreeMap<u16, KindStats>>,
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializable")
}

fn excerpt(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Replaces the array `field` by an object keyed by `key` (duplicates get a suffix), so sets
/// compare item by item whatever their order.
fn key_rows(v: &mut Value, field: &str, key: fn(&Value) -> String) {
    let Some(slot) = v.get_mut(field) else { return };
    if let Value::Array(items) = slot {
        let taken = std::mem::take(items);
        let mut map = serde_json::Map::new();
        for (i, item) in taken.into_iter().enumerate() {
            let mut k = key(&item);
            if map.contains_key(&k) {
                k = format!("{k} (duplicate #{i})");
            }
            map.insert(k, item);
        }
        *slot = Value::Object(map);
    }
}

fn field_text(v: &Value, f: &str) -> String {
    match v.get(f) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(x) => x.to_string(),
    }
}

fn by_dvm_kind(v: &Value) -> String {
    format!("{}|{}", field_text(v, "dvm_id"), field_text(v, "kind"))
}

fn by_dvm(v: &Value) -> String {
    field_text(v, "dvm_id")
}

fn by_kind(v: &Value) -> String {
    field_text(v, "kind")
}

fn by_month(v: &Value) -> String {
    field_text(v, "month")
}

/// Differences between `got` and `want` as `path: got X, expected Y` lines. Integers must be
/// equal; other numbers (rates) within 1e-9.
fn diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    let child = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(&child(k.as_str()), gv, wv, out),
                    None => out.push(format!("{}: missing, expected {wv}", child(k.as_str()))),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!("{}: {gv}, not expected", child(k.as_str())));
                }
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                out.push(format!("{path}: {} items, expected {}", g.len(), w.len()));
            }
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                diff(&format!("{path}[{i}]"), gv, wv, out);
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            let equal = match (g.as_u64(), w.as_u64()) {
                (Some(a), Some(b)) => a == b,
                _ => match (g.as_f64(), w.as_f64()) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9,
                    _ => false,
                },
            };
            if !equal {
                out.push(format!("{path}: {got}, expected {want}"));
            }
        }
        _ => {
            if got != want {
                out.push(format!("{path}: {got}, expected {want}"));
            }
        }
    }
}

/// A list's sort key, comparable across items.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Num(u64),
    Text(Option<String>),
}

fn dvm_key(d: &DvmSummary, sort: &str) -> SortKey {
    match sort {
        "total_events" => SortKey::Num(d.total_events),
        "total_responses" => SortKey::Num(d.total_responses),
        "total_feedback" => SortKey::Num(d.total_feedback),
        "total_requests" => SortKey::Num(d.total_requests),
        "name" => SortKey::Text(d.dvm_name.clone()),
        _ => SortKey::Text(d.last_seen.clone()),
    }
}

fn kind_key(k: &KindSummary, sort: &str) -> SortKey {
    match sort {
        "total_requests" => SortKey::Num(k.total_requests),
        "total_responses" => SortKey::Num(k.total_responses),
        "num_supporting_dvms" => SortKey::Num(k.num_supporting_dvms),
        "kind" => SortKey::Num(u64::from(k.kind)),
        _ => SortKey::Text(k.last_seen.clone()),
    }
}

struct Page<'a, T> {
    items: &'a [T],
    total: u64,
    limit: u64,
    offset: u64,
}

/// Checks one page of a list against the full expected list (already filtered and sorted, ties by
/// id): totals and echoes, the order of the sort keys, the keys at each position (so ties may come
/// in any order), and each item against the expected item with the same id.
fn page_lines<T: Serialize>(
    page: Page<'_, T>,
    want: &[&T],
    q: &ListQuery,
    key: impl Fn(&T) -> SortKey,
    id: impl Fn(&T) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    if page.total != want.len() as u64 {
        out.push(format!("total: {}, expected {}", page.total, want.len()));
    }
    if page.limit != limit || page.offset != offset {
        out.push(format!(
            "limit/offset: {}/{}, expected {limit}/{offset}",
            page.limit, page.offset
        ));
    }
    let from = (offset as usize).min(want.len());
    let to = (offset.saturating_add(limit) as usize).min(want.len());
    let slice = &want[from..to];
    if page.items.len() != slice.len() {
        out.push(format!("{} items, expected {}", page.items.len(), slice.len()));
    }
    let desc = q.order != Some("asc");
    for (i, pair) in page.items.windows(2).enumerate() {
        let (a, b) = (key(&pair[0]), key(&pair[1]));
        if (desc && a < b) || (!desc && a > b) {
            out.push(format!(
                "items {i} and {} out of {} order: {a:?} then {b:?}",
                i + 1,
                if desc { "descending" } else { "ascending" }
            ));
        }
    }
    for (i, (g, w)) in page.items.iter().zip(slice.iter().copied()).enumerate() {
        let (kg, kw) = (key(g), key(w));
        if kg != kw {
            out.push(format!(
                "item {}: sort key {kg:?}, expected {kw:?}",
                offset as usize + i
            ));
        }
    }
    let by_id: HashMap<String, &T> = want.iter().map(|&w| (id(w), w)).collect();
    let mut seen = HashSet::new();
    for g in page.items {
        let gid = id(g);
        if !seen.insert(gid.clone()) {
            out.push(format!("{gid}: listed twice"));
            continue;
        }
        match by_id.get(&gid) {
            None => out.push(format!("{gid}: listed, not expected")),
            Some(&w) => diff(&gid, &json(g), &json(w), &mut out),
        }
    }
    if from == 0 && to == want.len() {
        for &w in want {
            let wid = id(w);
            if !seen.contains(&wid) {
                out.push(format!("{wid}: missing"));
            }
        }
    }
    out
}

/// Whether a top-5 of error reasons is correct up to the order of equal counts: same length, each
/// count right for its reason, no repeats, non-increasing, same counts as the expected top 5.
fn same_top_errors(got: &[ReasonCount], want: &[ReasonCount], all: &BTreeMap<String, u64>) -> bool {
    let mut seen = HashSet::new();
    got.len() == want.len()
        && got
            .iter()
            .all(|rc| all.get(&rc.reason) == Some(&rc.count) && seen.insert(rc.reason.as_str()))
        && got.windows(2).all(|p| p[0].count >= p[1].count)
        && got.iter().map(|x| x.count).eq(want.iter().map(|x| x.count))
}

/// Lists carry no timestamp: the answer must match the reference at some second between a minute
/// before the request (the cache) and its end; the closest candidate is reported.
fn candidates(g: &Got) -> std::iter::Rev<std::ops::RangeInclusive<u64>> {
    (g.before.saturating_sub(75)..=g.after).rev()
}

fn normalize_dvm_stats(s: &mut DvmStats) {
    for v in [
        &mut s.supported_kinds,
        &mut s.announced_kinds,
        &mut s.served_kinds,
        &mut s.announced_not_served,
        &mut s.served_not_announced,
    ] {
        v.sort_unstable();
    }
    s.kinds.sort_by_key(|k| k.kind);
}

impl<'a> Checker<'a> {
    fn new(r: &'a Reference, fresh_after: Option<u64>) -> Self {
        Checker {
            r,
            fresh_after,
            report: Report::default(),
            dvm_lists: HashMap::new(),
            kind_lists: HashMap::new(),
            dvm_stats: HashMap::new(),
            kind_stats: HashMap::new(),
        }
    }

    fn push(&mut self, label: &str, line: impl std::fmt::Display) {
        self.report.lines.push(format!("{label}: {line}"));
    }

    fn compare(&mut self, label: &str, got: &Value, want: &Value) {
        let mut out = Vec::new();
        diff("", got, want, &mut out);
        for l in out {
            self.push(label, l);
        }
    }

    fn parse<T: DeserializeOwned>(&mut self, g: &Got, label: &str) -> Option<T> {
        if g.status != 200 {
            self.push(label, format_args!("HTTP {}: {}", g.status, excerpt(&g.body)));
            return None;
        }
        match serde_json::from_str(&g.body) {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(
                    label,
                    format_args!("unreadable answer ({e}): {}", excerpt(&g.body)),
                );
                None
            }
        }
    }

    /// The answer's `now`, checked to lie between a minute before the request and its end.
    fn now_of(&mut self, g: &Got, label: &str, timestamp: &str) -> Option<u64> {
        let Some(now) = parse_rfc3339(timestamp) else {
            self.push(label, format_args!("timestamp {timestamp:?} is not RFC 3339 UTC"));
            return None;
        };
        if now > g.after + 1 || now + 120 < g.before {
            self.push(
                label,
                format_args!(
                    "timestamp {timestamp} ({now}) is outside the request's time {}..{} (cache: 60 s)",
                    g.before, g.after
                ),
            );
        }
        if let Some(f) = self.fresh_after
            && now <= f
        {
            self.report.stale += 1;
        }
        Some(now)
    }

    fn dvm_list(&mut self, now: u64, range: TimeRange) -> Rc<Vec<DvmSummary>> {
        let r = self.r;
        self.dvm_lists
            .entry((now, range))
            .or_insert_with(|| Rc::new(r.dvm_summaries(now, range)))
            .clone()
    }

    fn kind_list(&mut self, now: u64, range: TimeRange) -> Rc<Vec<KindSummary>> {
        let r = self.r;
        self.kind_lists
            .entry((now, range))
            .or_insert_with(|| Rc::new(r.kind_summaries(now, range)))
            .clone()
    }

    fn dvm_stats(&mut self, now: u64, range: TimeRange) -> Rc<BTreeMap<String, DvmStats>> {
        let r = self.r;
        self.dvm_stats
            .entry((now, range))
            .or_insert_with(|| Rc::new(r.dvm_stats_all(now, range)))
            .clone()
    }

    fn kind_stats(&mut self, now: u64, range: TimeRange) -> Rc<BTreeMap<u16, KindStats>> {
        let r = self.r;
        self.kind_stats
            .entry((now, range))
            .or_insert_with(|| Rc::new(r.kind_stats_all(now, range)))
            .clone()
    }

    /// Checks one answer; a wrong one is also described by how it was served.
    /// The served line comes first and at most [`LINES_PER_ANSWER`] differences follow, so one
    /// answer with many wrong buckets cannot hide the rest of the report.
    fn check(&mut self, g: &Got) {
        let before = self.report.lines.len();
        self.check_answer(g);
        let found = self.report.lines.len() - before;
        if found > 0 {
            self.report.wrong.push(self.report.answers - 1);
            let computed = computed_at(g).map_or("-".to_owned(), |t| t.to_string());
            let served = format!(
                "GET {}: {found} differences; served: X-Cache {}, computed at {computed}, fetched {}..{}, \
                 fresh after {:?}",
                g.ep.path(),
                g.cache,
                g.before,
                g.after,
                self.fresh_after
            );
            self.report.lines.insert(before, served);
            if found > LINES_PER_ANSWER {
                self.report.lines.truncate(before + 1 + LINES_PER_ANSWER);
                self.report.lines.push(format!(
                    "  ... and {} more for this answer",
                    found - LINES_PER_ANSWER
                ));
            }
        }
    }

    fn check_answer(&mut self, g: &Got) {
        self.report.answers += 1;
        let label = format!("GET {}", g.ep.path());
        let label = label.as_str();
        match &g.ep {
            Ep::Global(range) => {
                let Some(s) = self.parse::<GlobalStats>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let want = self.r.global(now, *range);
                self.compare(label, &json(&s), &json(&want));
            }
            Ep::Dvm(range, _, hex) => {
                let Some(mut s) = self.parse::<DvmStats>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                normalize_dvm_stats(&mut s);
                let all = self.dvm_stats(now, *range);
                match all.get(hex) {
                    Some(want) => self.compare(label, &json(&s), &json(want)),
                    None => self.push(label, "the reference does not know this DVM"),
                }
            }
            Ep::Kind(range, kind) => {
                let Some(mut s) = self.parse::<KindStats>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                s.supporting_dvms.sort();
                let all = self.kind_stats(now, *range);
                match all.get(kind) {
                    Some(want) => self.compare(label, &json(&s), &json(want)),
                    None => self.push(label, "the reference does not know this kind"),
                }
            }
            Ep::DvmList(range, q) => {
                let Some(list) = self.parse::<DvmList>(g, label) else {
                    return;
                };
                self.check_dvm_list(g, label, *range, q, list);
            }
            Ep::KindList(range, q) => {
                let Some(list) = self.parse::<KindList>(g, label) else {
                    return;
                };
                self.check_kind_list(g, label, *range, q, &list);
            }
            Ep::Performance(range, group) => {
                let Some(mut p) = self.parse::<Performance>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &p.timestamp) else {
                    return;
                };
                let (want, reasons) = self.r.performance(now, *range, group);
                // Error reasons with equal counts may come in any order.
                for row in &mut p.rows {
                    let key = row_key(row.dvm_id.as_deref(), row.kind);
                    let expected = want
                        .rows
                        .iter()
                        .find(|w| row_key(w.dvm_id.as_deref(), w.kind) == key);
                    if let (Some(all), Some(w)) = (reasons.get(&key), expected)
                        && same_top_errors(&row.top_errors, &w.top_errors, all)
                    {
                        row.top_errors.clone_from(&w.top_errors);
                    }
                }
                let (mut a, mut e) = (json(&p), json(&want));
                for v in [&mut a, &mut e] {
                    key_rows(v, "rows", by_dvm_kind);
                }
                self.compare(label, &a, &e);
            }
            Ep::Reach(range) => {
                let Some(s) = self.parse::<Reach>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let (mut a, mut e) = (json(&s), json(&self.r.reach(now, *range)));
                for v in [&mut a, &mut e] {
                    key_rows(v, "kinds", by_kind);
                    key_rows(v, "dvms", by_dvm);
                }
                self.compare(label, &a, &e);
            }
            Ep::Competition(range) => {
                let Some(s) = self.parse::<Competition>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let (mut a, mut e) = (json(&s), json(&self.r.competition(now, *range)));
                for v in [&mut a, &mut e] {
                    key_rows(v, "dvms", by_dvm);
                }
                self.compare(label, &a, &e);
            }
            Ep::Prices(range, group) => {
                let Some(s) = self.parse::<Prices>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let (mut a, mut e) = (json(&s), json(&self.r.prices(now, *range, group)));
                for v in [&mut a, &mut e] {
                    key_rows(v, "rows", by_dvm_kind);
                }
                self.compare(label, &a, &e);
            }
            Ep::Payments(range, group) => {
                let Some(s) = self.parse::<Payments>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                // Rows in order: most paid, then most asked, then id or kind.
                let want = self.r.payments(now, *range, group);
                self.compare(label, &json(&s), &json(&want));
            }
            Ep::Contextvm(range) => {
                let Some(s) = self.parse::<ContextvmTraffic>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let want = self.r.contextvm(now, *range, self.r.live_since);
                self.compare(label, &json(&s), &json(&want));
            }
            Ep::Coverage(range) => {
                let Some(s) = self.parse::<RelayCoverage>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let want = self.r.relay_coverage(now, *range);
                self.compare(label, &json(&s), &json(&want));
            }
            Ep::New(range) => {
                let Some(s) = self.parse::<WhatsNew>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &s.timestamp) else {
                    return;
                };
                let (mut a, mut e) = (json(&s), json(&self.r.whats_new(now, *range)));
                for v in [&mut a, &mut e] {
                    key_rows(v, "dvms", by_dvm);
                    key_rows(v, "kinds", by_kind);
                }
                self.compare(label, &a, &e);
            }
            Ep::Monthly => {
                let Some(m) = self.parse::<MonthlyHistory>(g, label) else {
                    return;
                };
                let (mut a, mut e) = (json(&m), json(&self.r.monthly()));
                for v in [&mut a, &mut e] {
                    key_rows(v, "months", by_month);
                }
                self.compare(label, &a, &e);
            }
            Ep::KindsUsage => {
                let Some(u) = self.parse::<KindsUsage>(g, label) else {
                    return;
                };
                let Some(now) = self.now_of(g, label, &u.timestamp) else {
                    return;
                };
                let (mut a, mut e) = (json(&u), json(&self.r.kinds_usage(now)));
                for v in [&mut a, &mut e] {
                    key_rows(v, "used", |r| field_text(r, "kind"));
                }
                self.compare(label, &a, &e);
            }
            Ep::Missing(_) => {
                if g.status != 404 {
                    self.push(
                        label,
                        format_args!("HTTP {}, expected 404: {}", g.status, excerpt(&g.body)),
                    );
                }
            }
        }
    }

    fn check_dvm_list(&mut self, g: &Got, label: &str, range: TimeRange, q: &ListQuery, mut list: DvmList) {
        for d in &mut list.dvms {
            d.supported_kinds.sort_unstable();
            d.announced_kinds.sort_unstable();
        }
        let needle = q.search.as_ref().map(|s| s.to_lowercase());
        let sort = q.sort.unwrap_or("last_seen");
        let desc = q.order != Some("asc");
        let mut best: Option<Vec<String>> = None;
        for now in candidates(g) {
            let all = self.dvm_list(now, range);
            let mut want: Vec<&DvmSummary> = all
                .iter()
                .filter(|d| match &needle {
                    None => true,
                    Some(n) => {
                        d.id.contains(n.as_str())
                            || d.npub.to_lowercase().contains(n.as_str())
                            || d.dvm_name
                                .as_ref()
                                .is_some_and(|x| x.to_lowercase().contains(n.as_str()))
                    }
                })
                .collect();
            want.sort_by(|a, b| {
                let o = dvm_key(a, sort).cmp(&dvm_key(b, sort));
                let o = if desc { o.reverse() } else { o };
                o.then_with(|| a.id.cmp(&b.id))
            });
            let page = Page {
                items: &list.dvms,
                total: list.total,
                limit: list.limit,
                offset: list.offset,
            };
            let lines = page_lines(page, &want, q, |d| dvm_key(d, sort), |d| d.id.clone());
            if lines.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| lines.len() < b.len()) {
                best = Some(lines);
            }
        }
        for l in best.unwrap_or_default() {
            self.push(label, l);
        }
    }

    fn check_kind_list(&mut self, g: &Got, label: &str, range: TimeRange, q: &ListQuery, list: &KindList) {
        let needle = q.search.as_ref().map(|s| s.to_lowercase());
        let sort = q.sort.unwrap_or("last_seen");
        let desc = q.order != Some("asc");
        let mut best: Option<Vec<String>> = None;
        for now in candidates(g) {
            let all = self.kind_list(now, range);
            let mut want: Vec<&KindSummary> = all
                .iter()
                .filter(|k| match &needle {
                    None => true,
                    Some(n) => {
                        k.kind.to_string().contains(n.as_str())
                            || k.name
                                .as_ref()
                                .is_some_and(|x| x.to_lowercase().contains(n.as_str()))
                    }
                })
                .collect();
            want.sort_by(|a, b| {
                let o = kind_key(a, sort).cmp(&kind_key(b, sort));
                let o = if desc { o.reverse() } else { o };
                o.then_with(|| a.kind.cmp(&b.kind))
            });
            let page = Page {
                items: &list.kinds,
                total: list.total,
                limit: list.limit,
                offset: list.offset,
            };
            let lines = page_lines(page, &want, q, |k| kind_key(k, sort), |k| k.kind.to_string());
            if lines.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| lines.len() < b.len()) {
                best = Some(lines);
            }
        }
        for l in best.unwrap_or_default() {
            self.push(label, l);
        }
    }
}
