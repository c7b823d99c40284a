//! The directory of DVM-like services through the whole pipeline (stream, ingester, ClickHouse,
//! api): every announcement family, one row per service, replaceable announcements keeping only the
//! newest, liveness from heartbeats and results, hostile announcement content, bad parameters;
//! uptime and the status timeline against a slot-by-slot reference.

use dvmdash_testkit as common;

use std::time::Duration;

use dvmdash_core::Event;
use dvmdash_core::dto::{
    ContextvmTraffic, Deviations, Directory, DirectoryEntry, FamilyCounts, Liveness, Payments, Performance,
    ServiceLiveness, parse_rfc3339, rfc3339,
};
use dvmdash_core::kinds::Family;
use dvmdash_core::stream::EventStream;
use dvmdash_core::telemetry::now_secs;
use dvmdash_core::validate::Keys;
use dvmdash_testkit::{get_json, http_get, isolated, wait_until};
use serde_json::json;

fn tag(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn keys(name: &str) -> Keys {
    Keys::from_seed(format!("directory-test-{name}").as_bytes())
}

/// Services of every kind, as `(name, events)`; the checks below say what each must look like.
fn corpus(now: u64) -> Vec<Event> {
    let (both, results_only, encrypted, app, hostile, beating) = (
        keys("both"),
        keys("results-only"),
        keys("encrypted"),
        keys("app"),
        keys("hostile"),
        keys("beating"),
    );
    let customer = keys("customer");
    let mut events = Vec::new();
    // Announces as NIP-89 and ContextVM, publishes a tools list, answers a request.
    events.push(both.sign(
        now - 5000,
        31990,
        vec![tag(&["d", "a"]), tag(&["k", "5300"])],
        json!({"name": "Both Families"}).to_string(),
    ));
    // Two versions of the replaceable ContextVM announcement under different `d` tags: one
    // address, the newer wins.
    events.push(both.sign(
        now - 4000,
        11316,
        vec![tag(&["d", "old"])],
        json!({"name": "Old Name"}).to_string(),
    ));
    events.push(both.sign(
        now - 3000,
        11316,
        vec![tag(&["d", "new"])],
        json!({"name": "Both (MCP)"}).to_string(),
    ));
    events.push(both.sign(
        now - 3000,
        11317,
        vec![],
        json!({"tools": [{"name": "search_notes"}, {"name": "translate"}]}).to_string(),
    ));
    let request = customer.sign(now - 700, 5300, vec![], String::new());
    events.push(both.sign(
        now - 600,
        6300,
        vec![tag(&["e", &request.id]), tag(&["p", customer.pubkey_hex()])],
        "[]".into(),
    ));
    events.push(request);
    // Seen only through a result, two hours ago: idle at the default alive window.
    events.push(results_only.sign(now - 7200, 6100, vec![], "done".into()));
    // An encrypted DVM announced a month ago, never heard from since: silent.
    events.push(encrypted.sign(
        now - 30 * 86_400,
        11999,
        vec![tag(&["k", "5100"])],
        json!({"name": "Sealed"}).to_string(),
    ));
    // An app's NIP-89 handler for notes (kind 1): not a DVM-like service.
    events.push(app.sign(
        now - 100,
        31990,
        vec![tag(&["d", "x"]), tag(&["k", "1"])],
        json!({"name": "A Client"}).to_string(),
    ));
    // Malformed JSON content from a hostile ContextVM announcer; a tools list that is not one.
    events.push(hostile.sign(now - 50, 11316, vec![], "{\"name\": \"<script>x</script>".into()));
    events.push(hostile.sign(now - 50, 11317, vec![], json!({"tools": "rm -rf"}).to_string()));
    // Heartbeats only, the newest five minutes ago: alive.
    for ago in [1500, 1200, 900, 600, 300] {
        events.push(beating.sign(now - ago, 11998, vec![tag(&["d", "hb"])], String::new()));
    }
    events
}

fn row<'a>(d: &'a Directory, name: &str) -> &'a DirectoryEntry {
    let id = keys(name).pubkey_hex().to_owned();
    d.services
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("{name} is not in the directory: {:?}", d.services))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_family_one_row_per_service_with_liveness() {
    let (redis, clickhouse) = isolated();
    let stack = common::start(common::args(redis, clickhouse, vec![])).await;
    let now = now_secs();
    let events = corpus(now);
    let json: Vec<String> = events.iter().map(Event::to_json).collect();
    let mut conn = stack.redis_conn().await;
    EventStream::new(&stack.redis.names())
        .append(&mut conn, "wss://relay.example", now * 1000, &json)
        .await
        .expect("append the corpus");

    let url = format!("{}/api/directory", stack.base);
    let d: Directory = wait_until(
        "the directory to list every service",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let (d, status) = get_json::<Directory>(&url).await;
                let d = d.ok_or(format!("HTTP {status}"))?;
                if d.total == 5 && d.services.iter().any(|e| e.tools.len() == 2) {
                    Ok(d)
                } else {
                    Err(format!("{} services: {:?}", d.total, d.services))
                }
            }
        },
    )
    .await;

    let counts = FamilyCounts {
        all: 5,
        nip89: 1,
        contextvm: 2,
        encrypted: 1,
        unannounced: 2,
    };
    assert_eq!(d.counts, counts);
    let both = row(&d, "both");
    assert_eq!(both.families, vec![Family::Nip89, Family::Contextvm]);
    assert_eq!(
        both.name.as_deref(),
        Some("Both (MCP)"),
        "the newest announcement names it"
    );
    assert_eq!(both.announced_kinds, vec![5300]);
    assert_eq!(both.tools, vec!["search_notes", "translate"]);
    assert_eq!(both.announcement_age_seconds.map(|a| a >= 3000), Some(true));
    assert_eq!(both.status, Liveness::Alive, "a result ten minutes ago");
    assert_eq!(row(&d, "results-only").status, Liveness::Idle);
    assert!(row(&d, "results-only").families.is_empty());
    let sealed = row(&d, "encrypted");
    assert_eq!(
        (sealed.status, sealed.announced_kinds.clone()),
        (Liveness::Silent, vec![5100])
    );
    let beating = row(&d, "beating");
    assert_eq!(beating.status, Liveness::Alive, "a heartbeat five minutes ago");
    assert!(beating.last_heartbeat.is_some() && beating.last_result.is_none());
    let hostile = row(&d, "hostile");
    assert_eq!(hostile.name, None, "malformed content gives no name");
    assert!(hostile.tools.is_empty());
    assert_eq!(d.alive, 2);

    // The family filter, search and paging.
    let (only, _) = get_json::<Directory>(&format!("{url}?family=contextvm&sort=name&order=asc")).await;
    let only = only.expect("contextvm");
    assert_eq!(only.total, 2);
    assert_eq!(only.counts, counts, "counts are over every service");
    let (found, _) = get_json::<Directory>(&format!("{url}?search=TRANSLATE")).await;
    assert_eq!(found.expect("search").services.len(), 1);
    let (page, _) = get_json::<Directory>(&format!("{url}?limit=2&offset=4")).await;
    let page = page.expect("page");
    assert_eq!((page.total, page.services.len()), (5, 1));

    // Bad parameters are refused with the parameter named.
    let long = "x".repeat(201);
    for bad in [
        "family=dvm",
        "limit=0",
        "offset=-1",
        "sort=id",
        "order=up",
        &format!("search={long}"),
    ] {
        let (status, body) = http_get(&format!("{url}?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let name = bad.split('=').next().unwrap_or_default();
        assert!(
            body.contains(&format!("\"parameter\":\"{name}\"")),
            "{bad}: {body}"
        );
    }
    stack.stop().await;
}

// ----- uptime and the status timeline -----

const SLOT: u64 = 300;
const HOUR: u64 = 3600;
const ALIVE_WINDOW: u64 = 3600; // the api's default
const HEARTBEAT_COVER: u64 = 900;

/// Evidence of one service: `(created_at, how long it keeps the service alive)`.
type Evidence = Vec<(u64, u64)>;

/// Services whose uptime is known slot by slot, with the events that make it: `(name, events,
/// evidence)`. Times are relative to `now`, when the events are made; the api computes later.
fn liveness_corpus(now: u64) -> Vec<(&'static str, Vec<Event>, Evidence)> {
    let mut out = Vec::new();
    // Heartbeats for ten hours, silence, then beats again until fifty minutes ago; one result
    // inside the silence.
    let flaky = keys("flaky");
    let mut beats: Vec<u64> = (0..120).map(|k| now - 30 * HOUR + k * SLOT).collect();
    beats.extend((0..62).map(|k| now - 6 * HOUR + k * SLOT));
    let mut events: Vec<Event> = beats
        .iter()
        .map(|&t| flaky.sign(t, 11998, vec![tag(&["d", "hb"])], String::new()))
        .collect();
    events.push(flaky.sign(now - 10 * HOUR, 6100, vec![], "done".into()));
    let mut evidence: Evidence = beats.iter().map(|&t| (t, HEARTBEAT_COVER)).collect();
    evidence.push((now - 10 * HOUR, ALIVE_WINDOW));
    out.push(("flaky", events, evidence));
    // A result every 20 minutes for eight days (some before the week), except for one day.
    let steady = keys("steady");
    let times: Vec<u64> = (0..8 * 72)
        .map(|k| now - 8 * 24 * HOUR + k * 1200 + 7)
        .filter(|&t| !(now - 3 * 24 * HOUR..now - 2 * 24 * HOUR).contains(&t))
        .collect();
    let events = times
        .iter()
        .map(|&t| steady.sign(t, 6300, vec![], "[]".into()))
        .collect();
    out.push((
        "steady",
        events,
        times.iter().map(|&t| (t, ALIVE_WINDOW)).collect(),
    ));
    // First seen two hours ago: its uptime counts from then.
    let newcomer = keys("newcomer");
    let beats: Vec<u64> = (0..23).map(|k| now - 2 * HOUR + 1 + k * SLOT).collect();
    let events = beats
        .iter()
        .map(|&t| newcomer.sign(t, 11998, vec![], String::new()))
        .collect();
    out.push((
        "newcomer",
        events,
        beats.iter().map(|&t| (t, HEARTBEAT_COVER)).collect(),
    ));
    // A heartbeat ten minutes ahead (within the allowed clock skew): alive, but no slot end of
    // either window follows it yet, so no uptime.
    let ahead = keys("ahead");
    out.push((
        "ahead",
        vec![ahead.sign(now + 600, 11998, vec![], String::new())],
        vec![(now + 600, HEARTBEAT_COVER)],
    ));
    out
}

/// Slot by slot at `now`: for each slot end of the window at or after the first evidence, whether
/// some evidence covers it. Written from the definition in docs/statistics.md.
fn reference_slots(now: u64, window: u64, evidence: &Evidence) -> Vec<(u64, bool)> {
    let first = evidence.iter().map(|e| e.0).min().unwrap_or(u64::MAX);
    let mut e = (now - window) / SLOT * SLOT;
    let mut out = Vec::new();
    while e <= now {
        if e > now - window && e >= first {
            let alive = evidence.iter().any(|&(t, cover)| t <= e && e - t <= cover);
            out.push((e, alive));
        }
        e += SLOT;
    }
    out
}

fn reference_uptime(now: u64, window: u64, evidence: &Evidence) -> Option<f64> {
    let slots = reference_slots(now, window, evidence);
    let alive = slots.iter().filter(|s| s.1).count();
    (!slots.is_empty()).then(|| alive as f64 * 100.0 / slots.len() as f64)
}

/// Runs of one state over the week as `(from, to, alive, slots)`.
fn reference_timeline(now: u64, evidence: &Evidence) -> Vec<(String, String, bool, u64)> {
    let mut runs: Vec<(String, String, bool, u64)> = Vec::new();
    for (e, alive) in reference_slots(now, 7 * 24 * HOUR, evidence) {
        match runs.last_mut() {
            Some(r) if r.2 == alive => {
                r.1 = rfc3339(e);
                r.3 += 1;
            }
            _ => runs.push((rfc3339(e), rfc3339(e), alive, 1)),
        }
    }
    runs
}

/// What differs between one service's liveness answer and the reference, if anything.
fn liveness_differences(name: &str, got: &ServiceLiveness, evidence: &Evidence) -> Option<String> {
    let now = parse_rfc3339(&got.timestamp)?;
    let day = reference_uptime(now, 24 * HOUR, evidence);
    let week = reference_uptime(now, 7 * 24 * HOUR, evidence);
    let timeline = reference_timeline(now, evidence);
    let got_timeline: Vec<(String, String, bool, u64)> = got
        .timeline
        .iter()
        .map(|s| (s.from.clone(), s.to.clone(), s.alive, s.slots))
        .collect();
    if (got.uptime_24h, got.uptime_7d) == (day, week) && got_timeline == timeline {
        None
    } else {
        Some(format!(
            "{name} at {now}: uptime {:?}/{:?}, want {day:?}/{week:?}; timeline {:?}, want {:?}",
            got.uptime_24h, got.uptime_7d, got_timeline, timeline
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uptime_and_timeline_match_a_slot_by_slot_reference() {
    let (redis, clickhouse) = isolated();
    let stack = common::start(common::args(redis, clickhouse, vec![])).await;
    let now = now_secs();
    let services = liveness_corpus(now);
    // A heartbeat an hour ahead is refused at the door (future_dated): never a service.
    let future = keys("future").sign(now + HOUR, 11998, vec![], String::new());
    let mut json: Vec<String> = services
        .iter()
        .flat_map(|(_, events, _)| events.iter().map(Event::to_json))
        .collect();
    json.push(future.to_json());
    let mut conn = stack.redis_conn().await;
    EventStream::new(&stack.redis.names())
        .append(&mut conn, "wss://relay.example", now * 1000, &json)
        .await
        .expect("append the corpus");

    for (name, _, evidence) in &services {
        let url = format!("{}/api/liveness/{}", stack.base, keys(name).pubkey_hex());
        let got: ServiceLiveness = wait_until(
            &format!("the liveness of {name} to match the reference"),
            Duration::from_secs(90),
            || {
                let url = url.clone();
                async move {
                    let (l, status) = get_json::<ServiceLiveness>(&url).await;
                    let l = l.ok_or(format!("HTTP {status}"))?;
                    match liveness_differences(name, &l, evidence) {
                        None => Ok(l),
                        Some(d) => Err(d),
                    }
                }
            },
        )
        .await;
        let want = if *name == "flaky" {
            Liveness::Idle
        } else {
            Liveness::Alive
        };
        assert_eq!(got.status, want, "{name}");
    }
    let flaky = liveness_of(&stack, "flaky").await;
    assert!(
        flaky.timeline.len() >= 4,
        "flaky went down and came back: {:?}",
        flaky.timeline
    );

    // The directory shows the same uptime, computed at its own moment.
    let (d, status) = get_json::<Directory>(&format!("{}/api/directory", stack.base)).await;
    let d = d.unwrap_or_else(|| panic!("directory: HTTP {status}"));
    let now = parse_rfc3339(&d.timestamp).expect("directory timestamp");
    assert_eq!(
        d.total, 4,
        "the future heartbeat makes no service: {:?}",
        d.services
    );
    for (name, _, evidence) in &services {
        let e = row(&d, name);
        assert_eq!(
            (e.uptime_24h, e.uptime_7d),
            (
                reference_uptime(now, 24 * HOUR, evidence),
                reference_uptime(now, 7 * 24 * HOUR, evidence)
            ),
            "{name} in the directory"
        );
    }

    // Unknown and malformed ids.
    let base = format!("{}/api/liveness", stack.base);
    let (status, body) = http_get(&format!("{base}/{}", keys("future").pubkey_hex())).await;
    assert_eq!(status, 404, "{body}");
    for bad in ["xyz", "npub1invalid", &"f".repeat(63), &"0".repeat(5000)] {
        let (status, body) = http_get(&format!("{base}/{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    stack.stop().await;
}

async fn liveness_of(stack: &common::Stack, name: &str) -> ServiceLiveness {
    let url = format!("{}/api/liveness/{}", stack.base, keys(name).pubkey_hex());
    let (l, status) = get_json::<ServiceLiveness>(&url).await;
    l.unwrap_or_else(|| panic!("{name}: HTTP {status}"))
}

// ----- hostile input around payments, cancellations, announcements and heartbeats -----

fn zap_receipt(
    recipient: &Keys,
    sender: &Keys,
    zapped: &str,
    bolt11: &str,
    asked: Option<&str>,
    at: u64,
) -> Event {
    let mut request_tags = vec![json!(["p", recipient.pubkey_hex()]), json!(["e", zapped])];
    if let Some(a) = asked {
        request_tags.push(json!(["amount", a]));
    }
    let description = json!({"kind": 9734, "pubkey": sender.pubkey_hex(), "tags": request_tags});
    keys("zapper").sign(
        at,
        9735,
        vec![
            tag(&["p", recipient.pubkey_hex()]),
            tag(&["e", zapped]),
            tag(&["bolt11", bolt11]),
            tag(&["description", &description.to_string()]),
        ],
        String::new(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_input_is_ignored_counted_and_disturbs_nothing() {
    let (redis, clickhouse) = isolated();
    let stack = common::start(common::args(redis, clickhouse, vec![])).await;
    let now = now_secs();
    let (dvm, customer, stranger) = (keys("honest"), keys("payer"), keys("stranger"));
    let mut events = vec![dvm.sign(
        now - 4000,
        31990,
        vec![tag(&["d", "a"]), tag(&["k", "5100"])],
        json!({"name": "Honest"}).to_string(),
    )];
    // A newer announcement at another address whose content is not JSON: flagged, names nothing.
    events.push(dvm.sign(
        now - 3000,
        31990,
        vec![tag(&["d", "b"]), tag(&["k", "5100"])],
        "{\"name\": ".into(),
    ));
    // Job 1 is delivered; jobs 2 and 3 only hear "processing". A stranger deletes job 2 (cancels
    // nothing); the customer deletes job 3 (cancelled).
    let jobs: Vec<Event> = (0..3)
        .map(|i| {
            customer.sign(
                now - 2000 + i * 10,
                5100,
                vec![tag(&["i", "x", "text"])],
                String::new(),
            )
        })
        .collect();
    for (i, job) in jobs.iter().enumerate() {
        let link = vec![tag(&["e", &job.id]), tag(&["p", customer.pubkey_hex()])];
        let mut busy = link.clone();
        busy.push(tag(&["status", "processing"]));
        events.push(dvm.sign(job.created_at + 1, 7000, busy, String::new()));
        if i == 0 {
            events.push(dvm.sign(job.created_at + 5, 6100, link, "done".into()));
        }
    }
    events.extend(jobs.iter().cloned());
    events.push(stranger.sign(now - 1500, 5, vec![tag(&["e", &jobs[1].id])], String::new()));
    events.push(customer.sign(now - 1500, 5, vec![tag(&["e", &jobs[2].id])], String::new()));
    // One honest zap of 21 sats, and three that must pay nothing.
    events.push(zap_receipt(
        &dvm,
        &customer,
        &jobs[0].id,
        "lnbc210n1pzapok",
        Some("21000"),
        now - 1400,
    ));
    events.push(zap_receipt(
        &dvm,
        &customer,
        &jobs[0].id,
        "lnbc2100u1pzapbig",
        Some("21000"),
        now - 1390,
    ));
    events.push(zap_receipt(
        &dvm,
        &stranger,
        &jobs[0].id,
        "lnbc211pzapabsurd",
        None,
        now - 1380,
    ));
    events.push(zap_receipt(
        &dvm,
        &stranger,
        &jobs[0].id,
        "lnbc1pzapnone",
        None,
        now - 1370,
    ));
    // A heartbeat an hour ahead: refused at ingest (a dead letter), never a beat.
    events.push(dvm.sign(now + 3600, 11998, vec![], String::new()));
    // ContextVM messages: a call with an oversized HTML tool name, one naming 40 servers, a
    // response to a call nobody saw, and two that are neither call nor response.
    let long_name = format!("<script>alert(1)</script>{}", "x".repeat(500));
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": long_name}});
    events.push(customer.sign(
        now - 1300,
        25910,
        vec![tag(&["p", dvm.pubkey_hex()])],
        call.to_string(),
    ));
    let crowd: Vec<Vec<String>> = (0..40)
        .map(|i| tag(&["p", keys(&format!("server-{i}")).pubkey_hex()]))
        .collect();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    events.push(customer.sign(now - 1290, 25910, crowd, list.to_string()));
    let unseen = "ab".repeat(32);
    let answer = json!({"jsonrpc": "2.0", "id": 9, "result": {}});
    events.push(dvm.sign(
        now - 1280,
        25910,
        vec![tag(&["e", &unseen]), tag(&["p", customer.pubkey_hex()])],
        answer.to_string(),
    ));
    events.push(customer.sign(
        now - 1270,
        25910,
        vec![tag(&["p", dvm.pubkey_hex()])],
        "not json".into(),
    ));
    let odd = json!({"jsonrpc": "2.0", "id": 3, "method": 42});
    events.push(customer.sign(
        now - 1260,
        25910,
        vec![tag(&["p", dvm.pubkey_hex()])],
        odd.to_string(),
    ));
    let json: Vec<String> = events.iter().map(Event::to_json).collect();
    let mut conn = stack.redis_conn().await;
    let stream = EventStream::new(&stack.redis.names());
    stream
        .append(&mut conn, "wss://relay.example", now * 1000, &json)
        .await
        .expect("append the corpus");

    let base = stack.base.clone();
    let stored = events.len() as u64 - 1;
    let deviations: Deviations = wait_until("the deviations to be counted", Duration::from_secs(60), || {
        let url = format!("{base}/api/stats/deviations?timeRange=24h");
        async move {
            let (d, status) = get_json::<Deviations>(&url).await;
            let d = d.ok_or(format!("HTTP {status}"))?;
            if d.events == stored {
                Ok(d)
            } else {
                Err(format!("{} events counted", d.events))
            }
        }
    })
    .await;
    let count = |name: &str| {
        deviations
            .deviations
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.events)
    };
    for (name, want) in [
        ("zap_amount_mismatch", 1),
        ("zap_amount_absurd", 1),
        ("zap_without_amount", 1),
        ("invalid_announcement_json", 1),
        ("invalid_contextvm_message", 2),
    ] {
        assert_eq!(count(name), Some(want), "{name}: {deviations:?}");
    }
    assert_eq!(deviations.deletions_of_others, 1, "{deviations:?}");
    assert_eq!(
        deviations.deviations.len(),
        dvmdash_core::nip90::deviation::ALL.len(),
        "every deviation is listed, zeros included"
    );

    let (p, _) = get_json::<Payments>(&format!("{base}/api/stats/payments?timeRange=24h&groupBy=dvm")).await;
    let p = p.expect("payments");
    assert_eq!(
        (p.zaps, p.paid_msat, p.senders, p.jobs_paid),
        (1, 21_000, 1, 1),
        "{p:?}"
    );
    let (t, _) = get_json::<ContextvmTraffic>(&format!("{base}/api/contextvm/traffic?timeRange=24h")).await;
    let t = t.expect("contextvm traffic");
    assert_eq!(
        (t.calls, t.responses, t.errors, t.answered),
        (2, 1, 0, 0),
        "{t:?}"
    );
    assert_eq!(
        t.servers.len(),
        17,
        "the honest DVM and the first 16 of 40 servers named: {t:?}"
    );
    let me = t
        .servers
        .iter()
        .find(|s| s.server_id == dvm.pubkey_hex())
        .expect("the DVM serves");
    assert_eq!((me.calls, me.responses, me.clients), (1, 1, 1), "{me:?}");
    let named = me
        .capabilities
        .iter()
        .find(|c| c.method == "tools/call")
        .expect("the call");
    assert!(
        named.name.starts_with("<script>") && named.name.len() == 128,
        "{named:?}"
    );
    let (perf, _) =
        get_json::<Performance>(&format!("{base}/api/stats/performance?timeRange=24h&groupBy=all")).await;
    let o = perf.expect("performance").rows[0].outcomes.clone();
    assert_eq!(
        (o.success, o.cancelled, o.pending + o.stalled),
        (1, 1, 1),
        "{o:?}"
    );

    let (d, _) = get_json::<Directory>(&format!("{base}/api/directory")).await;
    let d = d.expect("directory");
    let honest = row(&d, "honest");
    assert_eq!(
        honest.name.as_deref(),
        Some("Honest"),
        "the malformed announcement names nothing"
    );
    assert_eq!(honest.last_heartbeat, None, "the future heartbeat is no beat");
    let dead = stream.dead_letters(&mut conn).await.expect("dead letters");
    assert_eq!(dead, 1, "the future heartbeat is a dead letter");
    stack.stop().await;
}
