//! End to end, every hop real: signed events published by a separate client to a real relay,
//! collected, streamed through Redis, ingested into the ClickHouse engine, counted by the api.

use dvmdash_testkit as common;

use std::collections::HashSet;
use std::time::Duration;

use common::{expected, observed};
use dvmdash::simulate::{Model, Publisher};
use dvmdash_core::dto::{ContextvmTraffic, DvmRelays, RelayCoverage, RelayCoverageRow};
use dvmdash_core::validate::Keys;
use dvmdash_testkit::{
    PythonRelay, ScriptedRelay, StoreOnlyRelay, StoreRules, isolated, wait_for, wait_until,
};

/// Generates `jobs` jobs of simulated traffic (all reactions included), created around now.
fn traffic(jobs: u64, seed: u64) -> Vec<dvmdash_core::Event> {
    let mut model = Model::new(seed, 40);
    let now = dvmdash_core::telemetry::now_millis();
    let mut events = model.announcements(now / 1000);
    for i in 0..jobs {
        // Spread over the last minutes; answers land before now.
        let start = now - 300_000 + i * 100;
        events.extend(model.job(start).into_iter().map(|p| p.event));
    }
    // Nothing in the future beyond the allowed skew.
    events.retain(|e| e.created_at <= now / 1000 + 60);
    events
}

/// Compares id sets, describing the difference by kind instead of dumping both sets.
fn assert_same_ids(stored: &HashSet<String>, published: &HashSet<String>, events: &[dvmdash_core::Event]) {
    let kind_of = |id: &String| events.iter().find(|e| &e.id == id).map(|e| e.kind);
    let missing: Vec<_> = published
        .difference(stored)
        .map(|id| (&id[..8], kind_of(id)))
        .collect();
    let extra: Vec<_> = stored
        .difference(published)
        .map(|id| (&id[..8], kind_of(id)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "stored ({}) differs from published ({}): missing {missing:?}, unexpected {extra:?}",
        stored.len(),
        published.len()
    );
}

async fn publish_all(relay: &str, events: &[dvmdash_core::Event]) {
    let publisher = Publisher::new(&[relay.to_owned()]);
    for e in events {
        publisher.publish(e).await;
    }
    assert!(
        publisher.settle(Duration::from_secs(60)).await,
        "relay answered every event"
    );
    let (_, stats) = &publisher.stats()[0];
    let accepted = stats.accepted.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        accepted,
        events.len() as u64,
        "the relay accepted every signed event"
    );
}

/// Waits until the collector is subscribed to every relay in `urls`. The simulated traffic cancels
/// some jobs with kind-5 deletions, which relays honour: a request deleted before the collector
/// subscribed is gone for good, so publishing must wait for the live subscriptions.
async fn wait_subscribed(stack: &common::Stack, urls: &[&str]) {
    wait_for(
        "the collector to subscribe to every relay",
        Duration::from_secs(60),
        || async {
            let c = stack.relay_counters().await;
            urls.iter()
                .all(|u| c.get(*u).is_some_and(|c| c.connected))
                .then_some(())
        },
    )
    .await;
    // `connected` is set once the REQs are sent; give the relays a moment to register them.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_exactly_and_dedups_across_relays() {
    let (redis, clickhouse) = isolated();
    let relay_a = PythonRelay::start().await;
    let (_relay_b, relay_b_url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
    let stack = common::start(common::args(
        redis,
        clickhouse,
        vec![relay_a.url.clone(), relay_b_url.clone()],
    ))
    .await;

    let events = traffic(150, 42);
    let want = expected(&events);
    // Identical requests (same author, second, kind and tags) are one event, so a few merge.
    assert!(
        want.requests > 120 && want.responses > 50 && want.dvms > 3,
        "{want:?}"
    );
    wait_subscribed(&stack, &[&relay_a.url, &relay_b_url]).await;
    publish_all(&relay_a.url, &events).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let got = loop {
        let s = stack.global("24h").await;
        if s.total_requests >= want.requests
            && s.total_feedback >= want.feedback
            && s.total_responses >= want.responses
        {
            break s;
        }
        if std::time::Instant::now() > deadline {
            // Say where the missing events got lost: never stored by the relay, or not collected.
            let stored = stack.stored_ids().await;
            let missing: Vec<String> = events
                .iter()
                .filter(|e| (5000..=7000).contains(&e.kind) && !stored.contains(&e.id))
                .map(|e| e.id.clone())
                .collect();
            let on_relay = dvmdash_testkit::relay_has(&relay_a.url, &missing).await;
            panic!(
                "the api did not count every event within 90 s: {:?} want {want:?}\n\
                 missing from ClickHouse: {missing:?}\nof those, relay A returns: {on_relay:?}\n\
                 collector counters: {:?}\nrelay A log:\n{}",
                observed(&s),
                stack.relay_counters().await,
                relay_a.log_tail(4000)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        observed(&got),
        want,
        "api numbers equal the numbers computed from the published events"
    );
    // The main subscription covers job kinds, feedback and announcements; kind-0 profiles of the
    // DVMs seen and deletions by the customers seen come through follow-up subscriptions.
    let kinds = dvmdash_core::KindFilter::default();
    let published: HashSet<String> = events
        .iter()
        .filter(|e| kinds.collects(e.kind))
        .map(|e| e.id.clone())
        .collect();
    assert!(
        events.iter().any(|e| e.kind == 0),
        "the traffic includes a DVM profile"
    );
    wait_until(
        "every published event to be stored",
        Duration::from_secs(30),
        || async {
            let stored = stack.stored_ids().await;
            if stored.len() >= published.len() {
                Ok(())
            } else {
                Err(format!("{} of {}", stored.len(), published.len()))
            }
        },
    )
    .await;
    assert_same_ids(&stack.stored_ids().await, &published, &events);

    // The same events again, through the second relay: seen and dropped as duplicates.
    publish_all(&relay_b_url, &events).await;
    wait_for(
        "the collector to receive the copies from the second relay",
        Duration::from_secs(60),
        || async {
            let c = stack.relay_counters().await;
            c.get(&relay_b_url)
                .filter(|c| c.received >= published.len() as u64)
                .map(|_| ())
        },
    )
    .await;
    // Give the pipeline time to (wrongly) ingest anything it let through.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        observed(&stack.global("24h").await),
        want,
        "numbers unchanged after the replay"
    );
    assert_same_ids(&stack.stored_ids().await, &published, &events);
    let counters = stack.relay_counters().await;
    assert_eq!(
        counters[&relay_b_url].accepted, 0,
        "nothing new came from the second relay"
    );
    assert!(counters[&relay_a.url].connected && counters[&relay_b_url].connected);

    // Every stream entry was acknowledged after its insert.
    wait_for("no pending stream entries", Duration::from_secs(10), || async {
        (stack.pending().await == 0).then_some(())
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_events_are_rejected_counted_and_never_stored() {
    let (redis, clickhouse) = isolated();
    let keys = Keys::from_seed(b"reject-test");
    let now = dvmdash_core::telemetry::now_secs();
    let good_before = keys.sign(
        now - 5,
        5300,
        vec![vec!["p".into(), "11".repeat(32)]],
        String::new(),
    );
    let good_after = keys.sign(now - 4, 5050, vec![], "after the junk".into());

    let mut bad_sig = keys.sign(now - 3, 5300, vec![], "forged".into());
    let other = Keys::from_seed(b"someone-else").sign(now - 3, 5300, vec![], "forged".into());
    bad_sig.sig = other.sig;
    let mut wrong_id = keys.sign(now - 2, 5300, vec![], "original".into());
    wrong_id.content = "tampered after signing".into();
    let future = keys.sign(now + 3600, 5300, vec![], "from the future".into());

    let ev = |e: &dvmdash_core::Event| format!(r#"["EVENT","{{sub}}",{}]"#, e.to_json());
    let frames = vec![
        ev(&good_before),
        ev(&bad_sig),
        ev(&wrong_id),
        ev(&future),
        "[\"EVENT\",\"{sub}\",{\"id\":".into(), // truncated, malformed message
        ev(&good_after),
    ];
    let relay = ScriptedRelay::start(frames).await;
    let stack = common::start(common::args(redis, clickhouse, vec![relay.url.clone()])).await;

    let ids = wait_for(
        "both valid events to be stored",
        Duration::from_secs(60),
        || async {
            let ids = stack.stored_ids().await;
            (ids.len() >= 2).then_some(ids)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ids_after = stack.stored_ids().await;
    assert_eq!(ids_after, ids, "nothing else arrives later");
    let want: std::collections::HashSet<String> = [good_before.id.clone(), good_after.id.clone()].into();
    assert_eq!(
        ids, want,
        "only the valid events are stored; the pipeline kept going after the junk"
    );

    let counters = wait_for("relay counters", Duration::from_secs(10), || async {
        stack
            .relay_counters()
            .await
            .remove(&relay.url)
            .filter(|c| c.rejected >= 4)
    })
    .await;
    assert_eq!(counters.rejected, 4);
    assert_eq!(counters.accepted, 2);

    let metrics = dvmdash_core::telemetry::metrics_handle().render();
    for reason in ["bad_signature", "bad_id", "future_dated", "malformed_message"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("dvmdash_collector_events_rejected_total")
                    && l.contains(&format!("relay=\"{}\"", relay.url))
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .unwrap_or_else(|| panic!("no rejection metric for {reason}:\n{metrics}"));
        assert!(line.ends_with(" 1"), "{line}");
    }
    // Answers follow new data within a couple of seconds (the response cache's freshness bound).
    wait_until(
        "the api to count the two stored requests",
        Duration::from_secs(10),
        || async {
            let s = stack.global("1h").await;
            if s.total_requests == 2 {
                Ok(())
            } else {
                Err(format!("{} requests", s.total_requests))
            }
        },
    )
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_relay_cannot_store_anything_invalid_and_does_not_disturb_an_honest_one() {
    let (redis, clickhouse) = isolated();
    let keys = Keys::from_seed(b"hostile");
    let now = dvmdash_core::telemetry::now_secs();
    let valid_a = keys.sign(now - 5, 5300, vec![vec!["p".into(), "22".repeat(32)]], "a".into());
    let valid_b = keys.sign(
        now - 4,
        6300,
        vec![vec!["e".into(), valid_a.id.clone()]],
        "b".into(),
    );
    let ev = |e: &dvmdash_core::Event| format!(r#"["EVENT","{{sub}}",{}]"#, e.to_json());
    let mut frames = vec![ev(&valid_a)];
    let mut expect: std::collections::BTreeMap<&str, u64> = Default::default();
    for i in 0..3 {
        let mut bad_sig = keys.sign(now - 3, 5300, vec![], format!("forged {i}"));
        bad_sig.sig = Keys::from_seed(b"mallory")
            .sign(now - 3, 5300, vec![], format!("forged {i}"))
            .sig;
        frames.push(ev(&bad_sig));
        let mut bad_id = keys.sign(now - 3, 5300, vec![], format!("original {i}"));
        bad_id.content = format!("tampered {i}");
        frames.push(ev(&bad_id));
    }
    *expect.entry("bad_signature").or_default() += 3;
    *expect.entry("bad_id").or_default() += 3;
    // Kinds nobody asked for, including an excluded one in the DVM range.
    for kind in [1u16, 30023, 5666] {
        frames.push(ev(&keys.sign(now - 3, kind, vec![], "off".into())));
    }
    *expect.entry("off_filter").or_default() += 3;
    for secs in [20 * 60, 365 * 86_400] {
        frames.push(ev(&keys.sign(now + secs, 5300, vec![], "future".into())));
    }
    *expect.entry("future_dated").or_default() += 2;
    frames.push(ev(&keys.sign(now - 3, 5300, vec![], "x".repeat(600 * 1024))));
    *expect.entry("too_large").or_default() += 1;
    // Events of the wrong shape inside well-formed messages.
    frames.push(r#"["EVENT","{sub}",{"id":"x","pubkey":"y"}]"#.into());
    frames.push(r#"["EVENT","{sub}",{"id":1,"pubkey":2,"created_at":"now","kind":"a","tags":{},"content":[],"sig":3}]"#.into());
    frames.push(r#"["EVENT","{sub}",[1,2,3]]"#.into());
    *expect.entry("malformed").or_default() += 3;
    // Messages that are not relay messages at all, including nesting deep enough to break a naive parser.
    for junk in [
        "[\"EVENT\",\"{sub}\",{\"id\":".to_owned(),
        "not json".into(),
        r#"{"a":1}"#.into(),
        r#"["EVENT","{sub}"]"#.into(),
        "[]".into(),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        frames.push(junk);
    }
    *expect.entry("malformed_message").or_default() += 6;
    // A flood of copies of one valid event, then the second valid event.
    for _ in 0..3000 {
        frames.push(ev(&valid_a));
    }
    frames.push(ev(&valid_b));
    let hostile = ScriptedRelay::start(frames).await;

    let (_honest, honest_url) = dvmdash::demo::start_relay(0).await.expect("honest relay");
    let stack = common::start(common::args(
        redis,
        clickhouse,
        vec![hostile.url.clone(), honest_url.clone()],
    ))
    .await;
    let honest_events = traffic(40, 7);
    wait_subscribed(&stack, &[&honest_url]).await;
    publish_all(&honest_url, &honest_events).await;
    let kinds = dvmdash_core::KindFilter::default();
    let mut want: HashSet<String> = honest_events
        .iter()
        .filter(|e| kinds.collects(e.kind))
        .map(|e| e.id.clone())
        .collect();
    want.insert(valid_a.id.clone());
    want.insert(valid_b.id.clone());

    wait_until(
        "every valid event to be stored",
        Duration::from_secs(60),
        || async {
            let stored = stack.stored_ids().await;
            if stored.len() >= want.len() {
                Ok(())
            } else {
                Err(format!("{} of {}", stored.len(), want.len()))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all: Vec<dvmdash_core::Event> = honest_events
        .iter()
        .cloned()
        .chain([valid_a.clone(), valid_b.clone()])
        .collect();
    assert_same_ids(&stack.stored_ids().await, &want, &all);

    let metrics = dvmdash_core::telemetry::metrics_handle().render();
    let value = |name: &str, relay: &str, label: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(&format!("relay=\"{relay}\"")) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    for (reason, n) in &expect {
        assert_eq!(
            value(
                "dvmdash_collector_events_rejected_total",
                &hostile.url,
                &format!("reason=\"{reason}\"")
            ),
            *n,
            "rejects for {reason}"
        );
    }
    assert!(
        value(
            "dvmdash_collector_duplicates_total",
            &hostile.url,
            "layer=\"memory\""
        ) >= 3000
    );
    assert_eq!(
        value("dvmdash_collector_events_rejected_total", &honest_url, "reason="),
        0,
        "the honest relay is clean"
    );
    let counters = stack.relay_counters().await;
    assert!(
        counters[&honest_url].connected,
        "the honest relay stayed connected"
    );
    assert_eq!(counters[&hostile.url].accepted, 2);
    stack.stop().await;
}

/// A relay that stores events without pushing them live (busy relays drop pushes to slow
/// subscribers): the periodic catch-up pass still collects them, within its interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_a_relay_never_pushes_are_caught_up() {
    let (redis, clickhouse) = isolated();
    let relay = StoreOnlyRelay::start().await;
    let keys = Keys::from_seed(b"catch-up-test");
    let now = dvmdash_core::telemetry::now_secs();
    let before = keys.sign(now - 30, 5300, Vec::new(), "stored before we connected".into());
    relay.store(before.to_json());
    let mut args = common::args(redis, clickhouse, vec![relay.url.clone()]);
    args.collector.settle_ms = 200;
    args.collector.catchup_secs = 2;
    let stack = common::start(args).await;
    wait_for(
        "the stored event to be backfilled",
        Duration::from_secs(30),
        || async { stack.stored_ids().await.contains(&before.id).then_some(()) },
    )
    .await;
    // Past both settle passes (0.2 s and 2 s after the first backfill): only a catch-up can find
    // what the relay stores from now on.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = keys.sign(
        dvmdash_core::telemetry::now_secs(),
        5300,
        Vec::new(),
        "stored later, never pushed".into(),
    );
    relay.store(later.to_json());
    let stored = wait_for(
        "the event stored later to be caught up",
        Duration::from_secs(30),
        || async {
            let ids = stack.stored_ids().await;
            ids.contains(&later.id).then_some(ids)
        },
    )
    .await;
    assert_eq!(stored.len(), 2, "each event once: {stored:?}");
    stack.stop().await;
}

/// A relay that reads `until` as exclusive and returns at most 500 events per REQ, holding bursts
/// of more events in one second than a page holds, at page boundaries: every event is collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_in_one_second_are_collected_from_a_relay_with_exclusive_until_and_a_cap() {
    let (redis, clickhouse) = isolated();
    let relay = StoreOnlyRelay::start_with(StoreRules {
        exclusive_until: true,
        cap: 500,
    })
    .await;
    let now = dvmdash_core::telemetry::now_secs();
    let mut published = HashSet::new();
    let mut events = Vec::new();
    // Seconds holding 1,300, 800 and 501 events over 26 request kinds (at most 50 per kind and
    // second), a second of exactly one page, and a quiet tail spread over minutes.
    let bursts = [
        (now - 120, 1300),
        (now - 121, 800),
        (now - 200, 501),
        (now - 300, 500),
    ];
    for (b, &(at, n)) in bursts.iter().enumerate() {
        let keys = Keys::from_seed(format!("burst-{b}").as_bytes());
        for i in 0..n {
            let kind = 5000 + (i % 26) as u16;
            events.push(keys.sign(at, kind, Vec::new(), format!("burst {b} event {i}")));
        }
    }
    let keys = Keys::from_seed(b"burst-tail");
    for i in 0..300u64 {
        events.push(keys.sign(now - 1800 + i * 5, 5300, Vec::new(), format!("tail {i}")));
    }
    for e in &events {
        published.insert(e.id.clone());
        relay.store(e.to_json());
    }
    let stack = common::start(common::args(redis, clickhouse, vec![relay.url.clone()])).await;
    let stored = wait_until(
        "every stored event to be collected",
        Duration::from_secs(120),
        || async {
            let ids = stack.stored_ids().await;
            if ids.len() >= published.len() {
                Ok(ids)
            } else {
                Err(format!("{} of {} stored", ids.len(), published.len()))
            }
        },
    )
    .await;
    assert_same_ids(&stored, &published, &events);
    stack.stop().await;
}

/// Relay coverage from two real relay implementations, neither written here: the same traffic split
/// across the Python `nostr-relay` and rust-nostr's relay (`nostr-relay-builder`, run in this
/// process) with known overlaps. Per relay the events it delivered and those only it delivered, and per DVM the
/// relays its results appear on, equal what the split says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_coverage_and_reachability_match_a_known_split_across_two_real_relays() {
    let (redis, clickhouse) = isolated();
    let relay_a = PythonRelay::start().await;
    let (_rust_relay, relay_b_url) = dvmdash::demo::start_relay(0).await.expect("rust-nostr relay");
    let stack = common::start(common::args(
        redis,
        clickhouse,
        vec![relay_a.url.clone(), relay_b_url.clone()],
    ))
    .await;
    let kinds = dvmdash_core::KindFilter::default();
    // No deletions: relays honour them, which would make what each relay holds depend on timing.
    let events: Vec<dvmdash_core::Event> = traffic(90, 7)
        .into_iter()
        .filter(|e| e.kind != 5 && kinds.collects(e.kind))
        .collect();
    // Every third event on A only, every third on B only, the rest on both.
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        match i % 3 {
            0 => on_a.push(e.clone()),
            1 => on_b.push(e.clone()),
            _ => {
                on_a.push(e.clone());
                on_b.push(e.clone());
            }
        }
    }
    wait_subscribed(&stack, &[&relay_a.url, &relay_b_url]).await;
    publish_all(&relay_a.url, &on_a).await;
    publish_all(&relay_b_url, &on_b).await;

    let ids = |v: &[dvmdash_core::Event]| v.iter().map(|e| e.id.clone()).collect::<HashSet<_>>();
    let (a, b) = (ids(&on_a), ids(&on_b));
    // Identical jobs merge into one event (same id), so count distinct ids.
    let total = a.union(&b).count() as u64;
    let want = |mine: &HashSet<String>, other: &HashSet<String>, url: &str| RelayCoverageRow {
        relay: url.to_owned(),
        events: mine.len() as u64,
        only_here: mine.difference(other).count() as u64,
        share: Some(mine.len() as f64 / total as f64),
    };
    let mut want_rows = vec![want(&a, &b, &relay_a.url), want(&b, &a, &relay_b_url)];
    want_rows.sort_by(|x, y| y.events.cmp(&x.events).then_with(|| x.relay.cmp(&y.relay)));
    let url = format!("{}/api/relays/coverage?timeRange=24h", stack.base);
    let got: RelayCoverage = wait_until(
        "relay coverage to match the split",
        Duration::from_secs(90),
        || {
            let url = url.clone();
            let want_rows = want_rows.clone();
            async move {
                let (c, status) = common::get_json::<RelayCoverage>(&url).await;
                let c = c.ok_or(format!("HTTP {status}"))?;
                if c.events == total && c.relays == want_rows {
                    Ok(c)
                } else {
                    Err(format!(
                        "{} events, rows {:?}; want {total}, {want_rows:?}",
                        c.events, c.relays
                    ))
                }
            }
        },
    )
    .await;
    assert!(got.relays.iter().all(|r| r.only_here > 0), "{got:?}");

    // The busiest DVM: its results per relay are the split of its results.
    let mut by_author: std::collections::HashMap<&str, u64> = Default::default();
    for e in events.iter().filter(|e| (6000..7000).contains(&e.kind)) {
        *by_author.entry(e.pubkey.as_str()).or_default() += 1;
    }
    let (dvm, _) = by_author
        .iter()
        .max_by_key(|(pk, n)| (**n, std::cmp::Reverse(**pk)))
        .expect("a DVM with results");
    let results_on = |v: &[dvmdash_core::Event]| {
        v.iter()
            .filter(|e| e.pubkey == *dvm && (6000..7000).contains(&e.kind))
            .count() as u64
    };
    let (status, body) = common::http_get(&format!("{}/api/dvms/{dvm}/relays", stack.base)).await;
    assert_eq!(status, 200, "{body}");
    let reach: DvmRelays = serde_json::from_str(&body).expect("dvm relays");
    let got: Vec<(String, u64)> = reach
        .relays
        .iter()
        .map(|r| (r.relay.clone(), r.results))
        .collect();
    let mut want = vec![
        (relay_a.url.clone(), results_on(&on_a)),
        (relay_b_url.clone(), results_on(&on_b)),
    ];
    want.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    assert_eq!(got, want, "results of {dvm} per relay");

    // Unknown and malformed ids.
    let nobody = Keys::from_seed(b"coverage-nobody");
    let (status, _) =
        common::http_get(&format!("{}/api/dvms/{}/relays", stack.base, nobody.pubkey_hex())).await;
    assert_eq!(status, 404);
    for bad in ["xyz", &"0".repeat(3000)] {
        let (status, body) = common::http_get(&format!("{}/api/dvms/{bad}/relays", stack.base)).await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = common::http_get(&format!("{}/api/relays/coverage?timeRange=2y", stack.base)).await;
    assert_eq!(status, 400, "{body}");

    // Live ContextVM traffic: ephemeral, so the relays only pass it on to live subscribers. A
    // call through one relay and its answer through the other are both counted.
    let (client, server) = (
        Keys::from_seed(b"coverage-mcp-client"),
        Keys::from_seed(b"coverage-mcp-server"),
    );
    let now = dvmdash_core::telemetry::now_secs();
    let call_msg =
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}});
    let call = client.sign(
        now,
        25910,
        vec![vec!["p".into(), server.pubkey_hex().to_owned()]],
        call_msg.to_string(),
    );
    let answer_msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
    let answer = server.sign(
        now,
        25910,
        vec![
            vec!["e".into(), call.id.clone()],
            vec!["p".into(), client.pubkey_hex().to_owned()],
        ],
        answer_msg.to_string(),
    );
    publish_all(&relay_a.url, std::slice::from_ref(&call)).await;
    publish_all(&relay_b_url, std::slice::from_ref(&answer)).await;
    let url = format!("{}/api/contextvm/traffic?timeRange=24h", stack.base);
    let traffic: ContextvmTraffic = wait_until(
        "the live call and answer to be counted",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let (t, status) = common::get_json::<ContextvmTraffic>(&url).await;
                let t = t.ok_or(format!("HTTP {status}"))?;
                if (t.calls, t.responses, t.answered) == (1, 1, 1) {
                    Ok(t)
                } else {
                    Err(format!("{t:?}"))
                }
            }
        },
    )
    .await;
    assert!(traffic.seen_live_since.is_some(), "{traffic:?}");
    let row = &traffic.servers[0];
    assert_eq!(row.server_id, server.pubkey_hex());
    assert_eq!(
        (
            row.capabilities[0].method.as_str(),
            row.capabilities[0].name.as_str(),
            row.capabilities[0].responses
        ),
        ("tools/call", "echo", 1)
    );
    stack.stop().await;
}

/// A collector asked to stop returns promptly with everything it accepted on the stream. Its
/// stream writer ends when the queue closes; a relay-task handle kept alive past the stop used to
/// hold the queue open, so the writer waited until the process's stop timeout aborted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_collector_returns_promptly_with_what_it_accepted_written() {
    let (redis, _) = isolated();
    let (_relay, url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
    let events: Vec<dvmdash_core::Event> = traffic(20, 11)
        .into_iter()
        .filter(|e| e.kind != 5 && (5000..7001).contains(&e.kind))
        .collect();
    let (_relays_tx, relays_rx) = tokio::sync::watch::channel(vec![url.clone()]);
    let stop = tokio_util::sync::CancellationToken::new();
    let config = dvmdash_collector::Config {
        collector_id: "c-stop".into(),
        ..Default::default()
    };
    let collector = tokio::spawn(dvmdash_collector::run_with_relays(
        config,
        dvmdash_core::config::EventArgs::default(),
        redis.clone(),
        relays_rx,
        Default::default(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    publish_all(&url, &events).await;
    let stream = dvmdash_core::stream::EventStream::new(&redis.names());
    let mut conn = redis
        .client()
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let length = || {
        let (mut c, key) = (conn.clone(), stream.key().to_owned());
        async move {
            redis::cmd("XLEN")
                .arg(key)
                .query_async::<u64>(&mut c)
                .await
                .unwrap_or(0)
        }
    };
    let want = ids.len() as u64;
    wait_for("the events on the stream", Duration::from_secs(30), || {
        let len = length();
        async move { (len.await >= want).then_some(()) }
    })
    .await;
    let started = std::time::Instant::now();
    stop.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), collector).await;
    assert!(
        ended.is_ok(),
        "the collector returns within 5 s of its stop signal (took longer than {:?})",
        started.elapsed()
    );
    ended.expect("ended").expect("no panic").expect("no error");
    assert_eq!(
        length().await,
        ids.len() as u64,
        "each accepted event written once"
    );
    let _: () = redis::cmd("DEL")
        .arg(stream.key())
        .query_async(&mut conn)
        .await
        .expect("cleanup");
}

/// The relays page's window counts come from hourly counts the collectors add to with every
/// heartbeat: while a collector runs they equal what earlier lifetimes left plus its live counters
/// (which start again at zero when it restarts), and what a stopped collector flushed stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hourly_relay_counts_add_up_across_collector_restarts() {
    use dvmdash_core::dto::{RelayCounts, RelayHealth};
    let (redis, clickhouse) = isolated();
    let (_relay, url) = dvmdash::demo::start_relay(0).await.expect("in-process relay");
    let events: Vec<dvmdash_core::Event> = traffic(30, 17)
        .into_iter()
        .filter(|e| (5000..7001).contains(&e.kind))
        .collect();
    let (first, second) = events.split_at(events.len() / 2);
    let stored = |redis: dvmdash_core::config::RedisArgs, url: String| async move {
        let mut c = redis
            .client()
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let now = dvmdash_core::telemetry::now_secs();
        dvmdash_core::relay_counts::read(&mut c, &redis.names(), now - 3_600, now)
            .await
            .expect("hourly counts")
            .1
            .remove(&url)
            .unwrap_or_default()
    };
    let as_tuple = |w: &RelayCounts| (w.received, w.accepted, w.duplicates, w.rejected, w.reconnects);

    let mut last_seen = RelayCounts::default();
    for (lifetime, batch) in [first, second].into_iter().enumerate() {
        let before = stored(redis.clone(), url.clone()).await;
        let stack = common::start(common::args(redis.clone(), clickhouse.clone(), vec![url.clone()])).await;
        wait_for(
            "the collector to watch the relay",
            Duration::from_secs(30),
            || {
                let (s, u) = (&stack, url.clone());
                async move {
                    s.relay_counters()
                        .await
                        .get(&u)
                        .filter(|c| c.connected)
                        .map(|_| ())
                }
            },
        )
        .await;
        publish_all(&url, batch).await;
        // Every event of the batch is new to this collector, and after a restart the earlier
        // batch again (the relay's stored events are read anew). Distinct ids: the simulated
        // traffic can repeat an event.
        let upto = if lifetime == 0 { first.len() } else { events.len() };
        let delivered = events[..upto]
            .iter()
            .map(|e| e.id.as_str())
            .collect::<HashSet<_>>()
            .len() as u64;
        let status = format!("{}/api/relays/status?timeRange=1h", stack.base);
        last_seen = wait_until(
            "the window to equal the earlier lifetimes plus the live counters",
            Duration::from_secs(60),
            || {
                let (status, u, before) = (status.clone(), url.clone(), before.clone());
                async move {
                    let (h, _) = common::get_json::<RelayHealth>(&status).await;
                    let h = h.ok_or("no answer")?;
                    let r = h.relays.iter().find(|r| r.relay == u).ok_or("no row")?;
                    let live = as_tuple(&r.since_start);
                    let want = (
                        before.received + live.0,
                        before.accepted + live.1,
                        before.duplicates + live.2,
                        before.rejected + live.3,
                        before.reconnects + live.4,
                    );
                    if r.since_start.accepted >= delivered && as_tuple(&r.in_window) == want {
                        Ok(r.in_window.clone())
                    } else {
                        Err(format!(
                            "live {live:?} (want {delivered} accepted), before {before:?}, window {:?}",
                            r.in_window
                        ))
                    }
                }
            },
        )
        .await;
        stack.stop().await;
    }
    // Both lifetimes stay counted after their collectors stopped (the last heartbeat may add
    // deliveries of a paging pass, never new events).
    let total = stored(redis.clone(), url.clone()).await;
    assert_eq!(
        total.accepted, last_seen.accepted,
        "{total:?} after {last_seen:?}"
    );
    assert!(
        total.received >= last_seen.received && total.duplicates >= last_seen.duplicates,
        "{total:?}"
    );
    assert_eq!(
        total.received,
        total.accepted + total.duplicates + total.rejected,
        "{total:?}"
    );
}

/// NIP-77 where the relay speaks it, paging where it does not, and nothing lost either way.
/// rust-nostr's relay holds events it never pushes (written straight into its database after the
/// collector's first backfill): the next pass reconciles and fetches exactly those. The Python
/// relay does not reconcile: its passes page, and what it was sent is collected too. The relays
/// page's status says which method each relay's passes used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn negentropy_catch_up_where_supported_paging_elsewhere() {
    use dvmdash_core::dto::RelayHealth;
    use nostr_relay_builder::prelude::{JsonUtil as _, NostrDatabase as _};
    let (redis, clickhouse) = isolated();
    let (_nostr_relay, nostr_url, database) = common::relays::nostr_relay_with_database().await;
    let python = PythonRelay::start().await;
    let stack = common::start(common::args(
        redis,
        clickhouse,
        vec![nostr_url.clone(), python.url.clone()],
    ))
    .await;
    let status = format!("{}/api/relays/status?timeRange=1h", stack.base);
    let first_backfill_done = |url: String| {
        let status = status.clone();
        async move {
            let (h, _) = common::get_json::<RelayHealth>(&status).await;
            h?.relays
                .into_iter()
                .find(|r| r.relay == url)
                .filter(|r| r.state == "connected" && r.paging.iter().any(|p| p.done))
                .map(|_| ())
        }
    };
    wait_for("the first backfills", Duration::from_secs(60), || {
        let (a, b) = (
            first_backfill_done(nostr_url.clone()),
            first_backfill_done(python.url.clone()),
        );
        async move { a.await.and(b.await) }
    })
    .await;

    // Events the rust-nostr relay holds but never pushed; events published to the Python one.
    let events: Vec<dvmdash_core::Event> = traffic(12, 23)
        .into_iter()
        .filter(|e| (5000..7001).contains(&e.kind))
        .collect();
    let (hidden, published) = events.split_at(events.len() / 2);
    for e in hidden {
        let event = nostr_relay_builder::prelude::Event::from_json(e.to_json()).expect("a nostr event");
        database.save_event(&event).await.expect("stored in the relay");
    }
    publish_all(&python.url, published).await;

    let want: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    wait_until("every event stored", Duration::from_secs(90), || {
        let (s, want) = (&stack, &want);
        async move {
            let stored = s.stored_ids().await;
            let missing = want.difference(&stored).count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!("{missing} of {} missing", want.len()))
            }
        }
    })
    .await;
    let health = wait_for("a pass on each relay", Duration::from_secs(60), || {
        let (status, nostr_url, python_url) = (status.clone(), nostr_url.clone(), python.url.clone());
        async move {
            let (h, _) = common::get_json::<RelayHealth>(&status).await;
            let h = h?;
            let has = |url: &str, method: &str| {
                h.relays
                    .iter()
                    .any(|r| r.relay == url && r.passes_by_method.get(method).is_some_and(|n| *n > 0))
            };
            (has(&nostr_url, "negentropy") && has(&python_url, "req")).then_some(h)
        }
    })
    .await;
    let row = |url: &str| {
        health
            .relays
            .iter()
            .find(|r| r.relay == url)
            .expect("row")
            .clone()
    };
    assert_eq!(row(&nostr_url).negentropy, "supported", "{:?}", row(&nostr_url));
    assert_eq!(
        row(&nostr_url).passes_by_method.get("req"),
        None,
        "{:?}",
        row(&nostr_url)
    );
    assert_eq!(
        row(&python.url).negentropy,
        "unsupported",
        "{:?}",
        row(&python.url)
    );
    assert!(
        row(&nostr_url).paging.iter().any(|p| p.method == "negentropy"),
        "{:?}",
        row(&nostr_url)
    );
    // The hidden events came from the rust-nostr relay, by reconciliation: its coverage has them.
    let coverage: dvmdash_core::dto::RelayCoverage =
        common::get_json(&format!("{}/api/relays/coverage?timeRange=1h", stack.base))
            .await
            .0
            .expect("coverage");
    let nostr_events = coverage
        .relays
        .iter()
        .find(|r| r.relay == nostr_url)
        .map_or(0, |r| r.events);
    assert!(
        nostr_events >= hidden.len() as u64,
        "the rust-nostr relay delivered the {} hidden events: {coverage:?}",
        hidden.len()
    );
    stack.stop().await;
}
