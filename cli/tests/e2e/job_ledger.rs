//! The job ledger against the definition it replaces: after the finalizer's passes, every job
//! statistic read from the ledger, and each DVM's answered jobs, equals the same statistic computed
//! from raw events (`api/src/queries/jobs.rs`, `window.rs`), for every window and grouping, on jobs built to hit the hard cases:
//! answers stored before their request, answers arriving a batch after the request's hour was
//! linked, answers dated before the request, tied first results, cancellations by the author and
//! by someone else, error reasons, orphan answers, requests in a window's partial first hour.
//! Touches a crashed pass left behind, a lost Redis and junk in the touch set are exercised too.

use dvmdash_api::queries::jobs::{self, Grouping, JobTimeouts};
use dvmdash_api::queries::{Window, ledger};
use dvmdash_core::dto::TimeRange;
use dvmdash_core::event::Id32;
use dvmdash_core::job_ledger::{self, Finalizer, RecentRequests};
use dvmdash_core::store::RawEventRow;
use redis::AsyncCommands as _;
use tokio_util::sync::CancellationToken;

/// A small deterministic generator (the corpus must be the same every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

fn id(tag: u8, n: u64) -> Id32 {
    let mut out = [0u8; 32];
    out[0] = tag;
    out[1..9].copy_from_slice(&n.to_be_bytes());
    out[31] = 1;
    out
}

fn row(event_id: Id32, pubkey: Id32, kind: u16, created_at: u32, role: &str) -> RawEventRow {
    let mut r = RawEventRow::blank(event_id, pubkey, kind, created_at, role);
    r.relay = "wss://test".into();
    r
}

/// Three batches: requests with some answers, then more answers (many to requests linked in an
/// earlier pass), then deletions and the last answers.
fn corpus(now: u32) -> [Vec<RawEventRow>; 3] {
    let mut g = Lcg(7);
    let dvms: Vec<Id32> = (0..6).map(|i| id(0xd0, i)).collect();
    let customers: Vec<Id32> = (0..5).map(|i| id(0xc0, i)).collect();
    let kinds = [5000u16, 5050, 5300, 5301];
    let mut batches: [Vec<RawEventRow>; 3] = Default::default();
    let mut n = 0u64;
    let mut next_id = |tag: u8| {
        n += 1;
        id(tag, n)
    };
    for r in 0..900u64 {
        // Mostly the last 31 days, a few in the last hours (not yet timed out) and a few just
        // inside and outside each window's first hour.
        let age = match r % 10 {
            0 => g.next(4 * 3600) as u32,
            1 => [3600u32, 86_400, 7 * 86_400, 30 * 86_400][g.next(4) as usize] + g.next(1200) as u32 - 600,
            _ => g.next(31 * 86_400) as u32,
        };
        let at = now - age;
        let kind = kinds[g.next(4) as usize];
        let customer = customers[g.next(5) as usize];
        let rid = next_id(0xa0);
        let mut req = row(rid, customer, kind, at, "request");
        req.request_kind = kind;
        for _ in 0..g.next(3) {
            req.targets.push(dvms[g.next(6) as usize]);
        }
        // Some requests come after their answers, in a later batch.
        let req_batch = if r % 7 == 0 { 1 } else { 0 };
        batches[req_batch].push(req);
        for (d, dvm) in dvms.iter().enumerate() {
            if g.next(3) != 0 {
                continue;
            }
            let batch = g.next(3) as usize;
            // Dated a little before the request now and then (clock skew), ties on purpose.
            let first = (at + g.next(120) as u32).saturating_sub(if g.next(10) == 0 { 30 } else { 0 });
            let status =
                ["processing", "payment-required", "error", "partial", "success"][g.next(5) as usize];
            let mut fb = row(next_id(0xf0), *dvm, 7000, first, "feedback");
            fb.request_id = rid;
            fb.status = status.into();
            if status == "error" {
                fb.status_reason = ["out of credit", "timeout", "bad input"][g.next(3) as usize].into();
            }
            if status == "payment-required" {
                fb.amount_msat = Some(1000 * (1 + g.next(50)));
            }
            batches[batch].push(fb);
            if g.next(2) == 0 {
                let tie = if d % 2 == 0 {
                    at + 5
                } else {
                    at + 5 + g.next(2) as u32
                };
                let mut res = row(next_id(0xe0), *dvm, kind + 1000, tie, "result");
                res.request_id = rid;
                res.request_kind = kind;
                batches[(batch + g.next(2) as usize).min(2)].push(res);
            }
        }
        if r % 11 == 0 {
            // Withdrawn by its author, or "withdrawn" by someone else (no effect).
            let author = if r % 22 == 0 {
                customer
            } else {
                customers[(g.next(5) as usize + 1) % 5]
            };
            let mut del = row(next_id(0xde), author, 5, at + 60, "deletion");
            del.targets = vec![rid];
            batches[2].push(del);
        }
    }
    // Answers to a request never seen.
    for _ in 0..20 {
        let mut res = row(next_id(0xe0), dvms[g.next(6) as usize], 6300, now - 100, "result");
        res.request_id = next_id(0x99);
        batches[g.next(3) as usize].push(res);
    }
    batches
}

async fn insert(ch: &clickhouse::Client, rows: &[RawEventRow]) {
    let mut ins = ch.insert::<RawEventRow>("events_raw").await.expect("insert");
    for r in rows {
        ins.write(r).await.expect("write");
    }
    ins.end().await.expect("end");
}

/// Every job statistic from the ledger and from raw events, for every window, at the ledger's
/// clock; the differences, if any.
async fn differences(ch: &clickhouse::Client) -> Vec<String> {
    let as_of = job_ledger::as_of(ch).await.expect("clock").expect("a pass ran");
    let t = JobTimeouts::default();
    let mut out = Vec::new();
    for range in [TimeRange::Hour, TimeRange::Day, TimeRange::Week, TimeRange::Month] {
        let w = Window::new(range, u64::from(as_of));
        for g in [Grouping::All, Grouping::Dvm, Grouping::Kind, Grouping::DvmKind] {
            let mut a = ledger::performance(ch, &w, &t, g)
                .await
                .expect("ledger performance");
            let mut b = jobs::performance(ch, &w, &t, g).await.expect("raw performance");
            a.sort_by_key(|r| (r.dvm, r.kind));
            b.sort_by_key(|r| (r.dvm, r.kind));
            if a != b {
                out.push(format!(
                    "performance {range:?} {g:?}:\n ledger {a:?}\n raw    {b:?}"
                ));
            }
            let mut a = ledger::top_errors(ch, &w, g).await.expect("ledger errors");
            let mut b = jobs::top_errors(ch, &w, &t, g).await.expect("raw errors");
            a.sort_by(|x, y| (x.dvm, x.kind, &x.reason).cmp(&(y.dvm, y.kind, &y.reason)));
            b.sort_by(|x, y| (x.dvm, x.kind, &x.reason).cmp(&(y.dvm, y.kind, &y.reason)));
            if a != b {
                out.push(format!(
                    "top errors {range:?} {g:?}:\n ledger {a:?}\n raw    {b:?}"
                ));
            }
        }
        let mut a = ledger::jobs_answered(ch, &w).await.expect("ledger answered");
        let mut b = dvmdash_api::queries::window::jobs_answered(ch, &w)
            .await
            .expect("raw answered");
        a.sort_by_key(|r| r.pubkey);
        b.sort_by_key(|r| r.pubkey);
        if a != b {
            out.push(format!("jobs answered {range:?}:\n ledger {a:?}\n raw    {b:?}"));
        }
        let mut a = ledger::kind_reach(ch, &w, &t).await.expect("ledger reach");
        let mut b = jobs::kind_reach(ch, &w, &t).await.expect("raw reach");
        a.sort_by_key(|r| r.kind);
        b.sort_by_key(|r| r.kind);
        if a != b {
            out.push(format!("kind reach {range:?}:\n ledger {a:?}\n raw    {b:?}"));
        }
        let mut a = ledger::directed_reach(ch, &w, &t).await.expect("ledger directed");
        let mut b = jobs::directed_reach(ch, &w, &t).await.expect("raw directed");
        a.sort_by_key(|r| r.target);
        b.sort_by_key(|r| r.target);
        if a != b {
            out.push(format!("directed reach {range:?}:\n ledger {a:?}\n raw    {b:?}"));
        }
        let (ha, mut a) = ledger::competition(ch, &w).await.expect("ledger competition");
        let (hb, mut b) = jobs::competition(ch, &w, &t).await.expect("raw competition");
        a.sort_by_key(|r| r.dvm);
        b.sort_by_key(|r| r.dvm);
        if ha != hb || a != b {
            out.push(format!(
                "competition {range:?}:\n ledger {ha:?} {a:?}\n raw    {hb:?} {b:?}"
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_answers_what_raw_events_answer() {
    let (redis, clickhouse) = dvmdash_testkit::env::isolated();
    dvmdash_core::store::migrate(&clickhouse).await.expect("migrate");
    let ch = clickhouse.client();
    let conn = redis
        .connect(&CancellationToken::new())
        .await
        .expect("redis")
        .expect("not stopped");
    let names = redis.names();
    let mut finalizer = Finalizer::new(ch.clone(), conn.clone(), names.clone());
    let mut conn = conn;
    let now = u32::try_from(dvmdash_core::telemetry::now_secs()).expect("now");
    let [first, second, third] = corpus(now);

    // First start: nothing stored yet, the pass links every hour (none) and marks the set complete.
    let p = finalizer.pass().await.expect("first pass");
    assert!(p.full && p.hours == 0, "{p:?}");

    // Batch one, touches recorded as the ingester records them.
    insert(&ch, &first).await;
    let mut recent = RecentRequests::default();
    let touched = job_ledger::touches(&first, &mut recent);
    job_ledger::record(&mut conn, &names, &touched, &job_ledger::answers(&first))
        .await
        .expect("touches and answers");
    // Junk beside them: never a number, never an error.
    let junk: Vec<String> = vec![
        "h-5".into(),
        "h1".into(),
        "rZZ".into(),
        format!("a{}{}", "0".repeat(128), "x"),
        format!("a{}", "é".repeat(80)),
        "x".repeat(10_000),
        String::new(),
    ];
    let _: () = conn.sadd(names.job_touches(), &junk).await.expect("junk");
    let _: () = conn.sadd(names.job_answers().0, &junk).await.expect("junk");
    let p = finalizer.pass().await.expect("second pass");
    assert!(!p.full && p.hours > 0, "{p:?}");
    assert!(differences(&ch).await.is_empty(), "after batch one");

    // Batch two in another process's view (no remembered requests: its answers name ids the
    // finalizer looks up), many answering hours already linked.
    insert(&ch, &second).await;
    let touched = job_ledger::touches(&second, &mut RecentRequests::default());
    assert!(touched.iter().any(|t| t.starts_with('r')), "ids to look up");
    job_ledger::record(&mut conn, &names, &touched, &job_ledger::answers(&second))
        .await
        .expect("touches and answers");
    // Between whole passes the finalizer links answers alone: answered jobs are current at once.
    finalizer.answers_only().await.expect("answers");
    let at = job_ledger::as_of_clock(&ch, job_ledger::Clock::Answers)
        .await
        .expect("clock")
        .expect("moved");
    for range in [TimeRange::Hour, TimeRange::Day, TimeRange::Month] {
        let w = Window::new(range, u64::from(at));
        let mut a = ledger::jobs_answered(&ch, &w).await.expect("ledger answered");
        let mut b = dvmdash_api::queries::window::jobs_answered(&ch, &w)
            .await
            .expect("raw answered");
        a.sort_by_key(|r| r.pubkey);
        b.sort_by_key(|r| r.pubkey);
        assert_eq!(a, b, "answered jobs {range:?} after linking answers alone");
    }
    finalizer.pass().await.expect("third pass");
    let d = differences(&ch).await;
    assert!(d.is_empty(), "after batch two:\n{}", d.join("\n"));

    // Batch three's touches and answers as a crashed pass left them: taken, not linked.
    insert(&ch, &third).await;
    let touched = job_ledger::touches(&third, &mut recent);
    let left: Vec<&String> = touched.iter().collect();
    let _: () = conn.sadd(names.job_touches_linking(), &left).await.expect("left");
    let answered = job_ledger::answers(&third);
    let left: Vec<&String> = answered.iter().collect();
    let _: () = conn.sadd(names.job_answers().1, &left).await.expect("left");
    finalizer.pass().await.expect("fourth pass");
    let d = differences(&ch).await;
    assert!(d.is_empty(), "after batch three:\n{}", d.join("\n"));
    let left: u64 = conn.scard(names.job_touches_linking()).await.expect("scard");
    assert_eq!(left, 0, "a completed pass clears what it took");
    let left: u64 = conn.scard(names.job_answers().1).await.expect("scard");
    assert_eq!(left, 0, "a completed pass clears the answers it took");

    // Redis lost its job keys: the next pass relinks every hour, and nothing changes.
    let _: () = conn.del(names.jobs_linked()).await.expect("del");
    let p = finalizer.pass().await.expect("full pass");
    // Requests received more than 30 days ago left events_raw at once (its TTL): count what is there.
    let request_hours: u64 = ch
        .query("SELECT uniqExact(toStartOfHour(created_at)) FROM events_raw WHERE role = 'request'")
        .fetch_one()
        .await
        .expect("hours");
    assert!(
        p.full && p.hours as u64 == request_hours && request_hours > 400,
        "every hour with requests ({request_hours}): {p:?}"
    );
    let d = differences(&ch).await;
    assert!(d.is_empty(), "after relinking everything:\n{}", d.join("\n"));

    let _ = ch
        .query(&format!(
            "DROP DATABASE IF EXISTS {}",
            clickhouse.clickhouse_database
        ))
        .execute()
        .await;
}
