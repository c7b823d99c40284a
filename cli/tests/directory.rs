//! The directory of DVM-like services through the whole pipeline (stream, ingester, ClickHouse,
//! api): every announcement family, one row per service, replaceable announcements keeping only the
//! newest, liveness from heartbeats and results, hostile announcement content, bad parameters.

use dvmdash_testkit as common;

use std::time::Duration;

use dvmdash_core::Event;
use dvmdash_core::dto::{Directory, DirectoryEntry, FamilyCounts, Liveness};
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
