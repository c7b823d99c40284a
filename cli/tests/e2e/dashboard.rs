//! The web dashboard in headless Chromium against the api serving a known corpus: every page loads
//! without a console error and shows the api's numbers; search, sort, paging, view and the time
//! window live in the URL and survive reload and back/forward; names replace pubkeys (a hostile
//! `<script>` name stays text, in the page and in the link-preview tags); feedback-only DVMs have a
//! page; a profile picture that does not load gives way to initials; unknown DVMs and kinds show the
//! 404 state. Screenshots of every page in both themes at 1280 and 390 px go to
//! `target/screenshots/` (checked by eye, see the closing notes).

use dvmdash_testkit as common;

use std::collections::BTreeMap;
use std::time::Duration;

use dvmdash_core::Event;
use dvmdash_core::dto::{
    ContextvmTraffic, Directory, DvmList, DvmRelays, DvmStats, GlobalStats, KindList, KindStats, KindsUsage,
    RelayCoverage, RelayHealth, ServiceLiveness,
};
use dvmdash_core::stream::EventStream;
use dvmdash_core::telemetry::now_secs;
use dvmdash_core::validate::Keys;
use dvmdash_testkit::browser::Page as Browser;
use dvmdash_testkit::required;
use dvmdash_testkit::{isolated, wait_for};
use fantoccini::Locator;
use serde_json::json;

const HOSTILE: &str = "<script>window.__pwned=1</script><img src=x onerror=1>";

const ADMIN_TOKEN: &str = "dashboard-admin-token-0123456789";

fn tag(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// The corpus: five DVMs (named, hostile-named and announcing kinds it never served, nameless,
/// feedback-only) answering three customers on three kinds within the last hour; one zap.
struct Corpus {
    events: Vec<Event>,
    alpha: Keys,
    hostile: Keys,
    nameless: Keys,
    quiet: Keys,
    requests: u64,
}

fn corpus(now: u64) -> Corpus {
    let k = |s: &str| Keys::from_seed(format!("dashboard-test-{s}").as_bytes());
    let (alpha, beta, hostile, nameless, quiet) =
        (k("alpha"), k("beta"), k("hostile"), k("nameless"), k("quiet"));
    let customers = [k("c1"), k("c2"), k("c3")];
    let mut events = Vec::new();
    let t0 = now - 50 * 60;
    let profile = |keys: &Keys, name: &str, about: &str, kinds: &[&str], at: u64| {
        let mut tags = vec![tag(&["d", "dashboard"])];
        tags.extend(kinds.iter().map(|k| tag(&["k", k])));
        keys.sign(at, 31990, tags, json!({"name": name, "about": about}).to_string())
    };
    events.push(profile(
        &alpha,
        "Alpha Discovery",
        "Finds notes you will like.",
        &["5300"],
        t0,
    ));
    events.push(profile(
        &beta,
        "Beta Translate",
        "Translations in 40 languages.",
        &["5002"],
        t0,
    ));
    events.push(profile(
        &hostile,
        HOSTILE,
        "About <b>bold</b> & \"quoted\"",
        &["5300", "5301", "5302"],
        t0,
    ));
    events.push(profile(
        &quiet,
        "Quiet Feedback",
        "Only ever says it is busy.",
        &["5050"],
        t0,
    ));
    let mut requests = 0;
    let plan: [(u16, &Keys, &[&Keys]); 9] = [
        (5300, &customers[0], &[&alpha, &hostile]),
        (5300, &customers[1], &[&alpha]),
        (5300, &customers[2], &[&hostile, &nameless]),
        (5002, &customers[0], &[&beta]),
        (5002, &customers[1], &[&beta, &nameless]),
        (5050, &customers[2], &[&nameless]),
        (5050, &customers[0], &[]),
        (5300, &customers[1], &[&alpha]),
        (5002, &customers[2], &[&beta]),
    ];
    for (i, (kind, customer, dvms)) in plan.iter().enumerate() {
        let at = t0 + 60 + i as u64 * 240;
        let req = customer.sign(at, *kind, vec![tag(&["i", "hello", "text"])], String::new());
        requests += 1;
        for (j, dvm) in dvms.iter().enumerate() {
            let link = vec![tag(&["e", &req.id]), tag(&["p", &req.pubkey])];
            let mut fb = link.clone();
            fb.push(tag(&["status", "processing"]));
            events.push(dvm.sign(at + 2 + j as u64, 7000, fb, String::new()));
            if i == 3 {
                // Beta asks to be paid first: the prices panels have a figure.
                let mut pay = link.clone();
                pay.push(tag(&["status", "payment-required"]));
                pay.push(tag(&["amount", "50000"]));
                events.push(dvm.sign(at + 3, 7000, pay, String::new()));
            }
            if i == 4 && j == 1 {
                let mut err = link.clone();
                err.push(tag(&["status", "error", "model overloaded"]));
                events.push(dvm.sign(at + 9, 7000, err, String::new()));
                continue;
            }
            let mut res = link.clone();
            res.push(tag(&["request", &req.to_json()]));
            res.push(tag(&["amount", "21000"]));
            events.push(dvm.sign(at + 5 + j as u64 * 3, kind + 1000, res, format!("result {i}")));
        }
        // The feedback-only DVM says it is busy on every job and never delivers.
        let busy = vec![
            tag(&["e", &req.id]),
            tag(&["p", &req.pubkey]),
            tag(&["status", "processing"]),
        ];
        events.push(quiet.sign(at + 1, 7000, busy, String::new()));
        if i == 1 {
            // The customer zaps Alpha 21 sats for this job: the payments panels have a figure.
            let description = json!({"kind": 9734, "pubkey": customer.pubkey_hex(),
                "tags": [["p", alpha.pubkey_hex()], ["amount", "21000"]]});
            let zap = vec![
                tag(&["p", alpha.pubkey_hex()]),
                tag(&["e", &req.id]),
                tag(&["bolt11", "lnbc210n1pzapdashboard"]),
                tag(&["description", &description.to_string()]),
            ];
            events.push(k("zapper").sign(at + 30, 9735, zap, String::new()));
        }
        events.push(req);
    }
    // A ContextVM server with a tools list and heartbeats: in the directory only.
    let mcp = k("mcp");
    events.push(mcp.sign(
        t0,
        11316,
        vec![],
        json!({"name": "Context Server", "about": "MCP tools over Nostr."}).to_string(),
    ));
    let tools: Vec<_> = [
        "search_notes",
        "summarize",
        "translate",
        "fetch_profile",
        "count_zaps",
        "list_relays",
        "resolve_nip05",
        "thread",
        "image_alt",
        "trending",
    ]
    .iter()
    .map(|n| json!({ "name": n }))
    .collect();
    events.push(mcp.sign(t0, 11317, vec![], json!({ "tools": tools }).to_string()));
    for ago in [900, 600, 300] {
        events.push(mcp.sign(now - ago, 11998, vec![tag(&["d", "hb"])], String::new()));
    }
    // Live ContextVM calls: to the server above and to Alpha (a DVM that serves MCP too), one
    // with a tool name that is markup, answered with a result or an error.
    let tools = [
        "search_notes",
        "<img src=x onerror=window.__pwned=2>",
        "summarize",
    ];
    for (i, server) in [&mcp, &alpha, &mcp, &alpha, &mcp].into_iter().enumerate() {
        let client = &customers[i % customers.len()];
        let at = now - 1200 + i as u64 * 60;
        let msg = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": tools[i % tools.len()]}});
        let call = client.sign(at, 25910, vec![tag(&["p", server.pubkey_hex()])], msg.to_string());
        let body = if i == 2 {
            json!({"jsonrpc": "2.0", "id": i, "error": {"code": -1, "message": "boom"}})
        } else {
            json!({"jsonrpc": "2.0", "id": i, "result": {"content": []}})
        };
        let answer = vec![tag(&["e", &call.id]), tag(&["p", client.pubkey_hex()])];
        events.push(server.sign(at + 2, 25910, answer, body.to_string()));
        events.push(call);
    }
    Corpus {
        events,
        alpha,
        hostile,
        nameless,
        quiet,
        requests,
    }
}

async fn feed(stack: &common::Stack, events: &[Event]) {
    let mut conn = stack.redis_conn().await;
    let json: Vec<String> = events.iter().map(Event::to_json).collect();
    EventStream::new(&stack.redis.names())
        .append(&mut conn, "wss://relay.example", now_secs() * 1000, &json)
        .await
        .expect("append the corpus");
}

fn num(n: u64) -> String {
    n.to_string()
}

/// An uptime as the pages show it.
fn uptime(p: Option<f64>) -> String {
    p.map_or_else(|| "–".to_owned(), |p| format!("{p:.1}%"))
}

async fn api<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> T {
    let (v, status) = common::get_json::<T>(&format!("{base}{path}")).await;
    v.unwrap_or_else(|| panic!("GET {path}: HTTP {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_a_real_browser() {
    let ui_dir = required("DVMDASH_TEST_UI_DIR");
    assert!(
        std::path::Path::new(&ui_dir).join("echarts.min.js").is_file(),
        "the UI must be built into {ui_dir} (scripts/build-ui.sh)"
    );
    let now = now_secs();
    let c = corpus(now);
    let (redis, clickhouse) = isolated();
    // One real relay (rust-nostr's) for the relays page's health.
    let (_relay, relay_url) = dvmdash::demo::start_relay(0).await.expect("relay");
    let mut args = common::args(redis, clickhouse, vec![relay_url.clone()]);
    args.api.admin_token = Some(dvmdash_core::config::Secret::new(ADMIN_TOKEN));
    let stack = common::start(args).await;
    feed(&stack, &c.events).await;
    let base = stack.base.clone();
    let url = format!("{base}/api/stats/global/latest?timeRange=24h");
    let want = c.requests;
    wait_for("the api to count the corpus", Duration::from_secs(90), || {
        let url = url.clone();
        async move {
            let (g, _) = common::get_json::<GlobalStats>(&url).await;
            g.filter(|g| g.total_requests == want && g.total_feedback > 0)
        }
    })
    .await;
    let npub = |k: &Keys| {
        dvmdash_core::nip19::npub(&dvmdash_core::nip19::parse_pubkey(k.pubkey_hex()).expect("pubkey"))
    };
    let b = Browser::start(&base).await;

    // ---- overview: every card equals the api's answer for the same window
    let g: GlobalStats = api(&base, "/api/stats/global/latest?timeRange=24h").await;
    b.open("/?timeRange=24h").await;
    // When the first number was on the page, in the page's own clock (ms since navigation start),
    // polled every few ms: an upper bound of the first meaningful paint (docs/performance.md).
    let mut numbers_at = serde_json::Value::Null;
    for _ in 0..3000 {
        numbers_at = b
            .js("const e = document.querySelector('[data-stat=total_requests]'); \
                 return e && /[0-9]/.test(e.textContent) ? performance.now() : null;")
            .await;
        if !numbers_at.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.wait_text("[data-stat=total_requests]", &num(g.total_requests))
        .await;
    for (stat, v) in [
        ("total_responses", g.total_responses),
        ("total_feedback", g.total_feedback),
        ("unique_users", g.unique_users),
        ("unique_dvms", g.unique_dvms),
        ("unique_kinds", g.unique_kinds),
    ] {
        b.wait_text(&format!("[data-stat={stat}]"), &num(v)).await;
    }
    let popular = g.popular_dvm.clone().expect("a popular DVM");
    let popular_stats: DvmStats = api(&base, &format!("/api/stats/dvm/{popular}?timeRange=24h")).await;
    let popular_name = popular_stats.dvm_name.clone().expect("the popular DVM is named");
    b.wait_text("[data-stat=popular_dvm] .dvm-name", &popular_name)
        .await;
    let kind = g.popular_kind.expect("a popular kind");
    b.wait_contains("[data-stat=popular_kind]", &kind.to_string())
        .await;
    b.wait_present(".chart-box canvas").await;
    let paint = b
        .js("const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;")
        .await;
    eprintln!(
        "overview: first contentful paint {paint} ms, numbers on the page by {numbers_at} ms after navigation start"
    );
    b.assert_clean("/", &[]).await;
    // The popular DVM card links to its page by npub.
    b.click("[data-stat=popular_dvm] a").await;
    b.wait_url("/dvm-stats/npub1", "").await;
    b.wait_text("[data-stat=dvm_name]", &popular_name).await;
    b.client.back().await.expect("back");
    b.wait_text("[data-stat=total_requests]", &num(g.total_requests))
        .await;

    // ---- the window lives in the URL; back/forward step through it
    b.click("button[data-range='1h']").await;
    b.wait_url("timeRange=1h", "timeRange=24h").await;
    let g1: GlobalStats = api(&base, "/api/stats/global/latest?timeRange=1h").await;
    b.wait_text("[data-stat=total_requests]", &num(g1.total_requests))
        .await;
    b.client.back().await.expect("back");
    b.wait_url("timeRange=24h", "").await;
    b.client.forward().await.expect("forward");
    b.wait_url("timeRange=1h", "").await;
    b.client.refresh().await.expect("reload");
    b.wait_url("timeRange=1h", "").await;
    // After a reload the app renders again: wait for the bar rather than read it at once.
    b.wait_text("button[aria-pressed=true]", "1h").await;
    b.assert_clean("/ (window changes)", &[]).await;

    // ---- DVM list: rows equal the api's, names everywhere, the hostile name is text
    let list: DvmList = api(&base, "/api/dvms?timeRange=24h&limit=24").await;
    assert!(
        list.dvms.iter().any(|d| d.id == c.quiet.pubkey_hex()),
        "feedback-only DVMs are listed by the api"
    );
    b.open("/dvm-stats?timeRange=24h").await;
    b.wait_count("[data-dvm-row]", list.dvms.len()).await;
    b.wait_text(
        "[data-stat=list_range]",
        &format!("1–{} of {}", list.total, list.total),
    )
    .await;
    for d in &list.dvms {
        let row = format!("[data-dvm-row='{}']", d.id);
        b.wait_text(
            &format!("{row} [data-col=total_responses]"),
            &num(d.total_responses),
        )
        .await;
        b.wait_text(
            &format!("{row} [data-col=total_feedback]"),
            &num(d.total_feedback),
        )
        .await;
        b.wait_text(
            &format!("{row} [data-col=total_requests]"),
            &num(d.total_requests),
        )
        .await;
        // The name may render a moment after the row's numbers: wait for it, then compare whole.
        let name_css = format!("{row} .dvm-name");
        b.wait_contains(&name_css, d.dvm_name.as_deref().unwrap_or("npub1"))
            .await;
        let shown = b.text(&name_css).await.unwrap_or_default();
        match &d.dvm_name {
            Some(n) => assert_eq!(&shown, n, "a DVM's name appears where its pubkey would"),
            None => assert!(
                shown.starts_with("npub1") && shown.contains('…'),
                "no name: shortened npub, got {shown}"
            ),
        }
    }
    let alert = b.client.get_alert_text().await;
    assert!(alert.is_err(), "no script ran from a DVM name: {alert:?}");
    assert_eq!(b.js("return window.__pwned === undefined").await, json!(true));
    b.assert_clean("/dvm-stats", &[]).await;

    // search, sort, view and paging state in the URL, through reload and back
    b.client
        .find(Locator::Css("input.search"))
        .await
        .expect("search box")
        .send_keys("alpha disc")
        .await
        .expect("type");
    b.wait_url("q=alpha+disc", "").await;
    b.wait_count("[data-dvm-row]", 1).await;
    b.wait_present(&format!("[data-dvm-row='{}']", c.alpha.pubkey_hex()))
        .await;
    b.client.refresh().await.expect("reload");
    b.wait_count("[data-dvm-row]", 1).await;
    assert_eq!(
        b.client
            .find(Locator::Css("input.search"))
            .await
            .expect("box")
            .prop("value")
            .await
            .expect("value"),
        Some("alpha disc".to_owned()),
        "the search box shows the URL's search after a reload"
    );
    b.client.back().await.expect("back");
    b.wait_url("/dvm-stats", "q=").await;
    b.wait_count("[data-dvm-row]", list.dvms.len()).await;
    // By the npub of a nameless DVM.
    b.open(&format!("/dvm-stats?timeRange=24h&q={}", npub(&c.nameless)))
        .await;
    b.wait_count("[data-dvm-row]", 1).await;
    // Sort by name ascending, as a table, one row per page: the URL holds it all.
    b.open("/dvm-stats?timeRange=24h&sort=name&order=asc").await;
    let by_name: DvmList = api(&base, "/api/dvms?timeRange=24h&sort=name&order=asc&limit=24").await;
    b.wait_count("[data-dvm-row]", by_name.dvms.len()).await;
    let first_row = b
        .client
        .find(Locator::Css("[data-dvm-row]"))
        .await
        .expect("a row")
        .attr("data-dvm-row")
        .await
        .expect("attr");
    assert_eq!(
        first_row.as_deref(),
        Some(by_name.dvms[0].id.as_str()),
        "rows follow the api's order"
    );
    b.click("[data-view=table]").await;
    b.wait_url("view=table", "").await;
    b.wait_present("table.data tr[data-dvm-row]").await;
    b.click("[data-order]").await;
    b.wait_url("sort=name", "order=asc").await;
    b.client.back().await.expect("back");
    b.wait_url("order=asc", "").await;
    b.wait_url("view=table", "").await;
    b.assert_clean("/dvm-stats (state)", &[]).await;

    // ---- DVM pages: totals equal the api's; feedback-only and hostile-named DVMs have pages
    for keys in [&c.alpha, &c.quiet, &c.hostile, &c.nameless] {
        let d: DvmStats = api(
            &base,
            &format!("/api/stats/dvm/{}?timeRange=24h", keys.pubkey_hex()),
        )
        .await;
        b.open(&format!("/dvm-stats/{}?timeRange=24h", npub(keys))).await;
        for (stat, v) in [
            ("total_responses", d.total_responses),
            ("total_feedback", d.total_feedback),
            ("total_requests", d.total_requests),
            ("jobs_answered", d.jobs_answered),
        ] {
            b.wait_text(&format!("[data-stat={stat}]"), &num(v)).await;
        }
        let name = d.dvm_name.clone().unwrap_or_else(|| "Unnamed DVM".to_owned());
        b.wait_text("[data-stat=dvm_name]", &name).await;
        b.wait_text("[data-stat=npub]", &npub(keys)).await;
        // Liveness: the api's uptime, read before and after the page (a slot may end between).
        let live = format!("/api/liveness/{}", keys.pubkey_hex());
        let before: ServiceLiveness = api(&base, &live).await;
        b.wait_present("[data-liveness] [data-stat=uptime_7d]").await;
        let shown = (
            b.text("[data-stat=uptime_24h]").await.unwrap_or_default(),
            b.text("[data-stat=uptime_7d]").await.unwrap_or_default(),
        );
        let after: ServiceLiveness = api(&base, &live).await;
        let of = |l: &ServiceLiveness| (uptime(l.uptime_24h), uptime(l.uptime_7d));
        assert!(
            shown == of(&before) || shown == of(&after),
            "{name}: the page shows uptime {shown:?}, the api {:?} then {:?}",
            of(&before),
            of(&after)
        );
        let spans = b
            .js("return document.querySelectorAll('[data-liveness] .timeline [data-state]').length")
            .await;
        let spans = spans.as_u64().unwrap_or_default() as usize;
        assert!(
            spans > 0 && (spans == before.timeline.len() || spans == after.timeline.len()),
            "{name}: {spans} timeline spans on the page, the api {} then {}",
            before.timeline.len(),
            after.timeline.len()
        );
        b.wait_present("[data-payments]").await;
        // Where to reach it: the api's relays of this DVM.
        let reach: DvmRelays = api(&base, &format!("/api/dvms/{}/relays", keys.pubkey_hex())).await;
        assert!(!reach.relays.is_empty(), "{name}: {reach:?}");
        b.wait_count("[data-reachability] [data-relay-row]", reach.relays.len())
            .await;
        if keys.pubkey_hex() == c.alpha.pubkey_hex() {
            b.wait_text("[data-payments] [data-stat=paid_msat]", "21 sats")
                .await;
            b.wait_text("[data-payments] [data-stat=jobs_paid]", "1").await;
        }
        b.assert_clean(&format!("/dvm-stats/{}", d.dvm_id), &[]).await;
    }
    // Served and announced kinds side by side.
    b.open(&format!("/dvm-stats/{}?timeRange=24h", c.hostile.pubkey_hex()))
        .await;
    b.wait_present("[data-stat=announced_not_served] a").await;
    let never = b
        .text("[data-stat=announced_not_served]")
        .await
        .unwrap_or_default();
    assert!(
        never.contains("5301") && never.contains("5302") && !never.contains("5300"),
        "{never}"
    );
    b.wait_contains("[data-stat=served_kinds]", "5300").await;
    assert_eq!(b.js("return window.__pwned === undefined").await, json!(true));
    assert!(b.client.get_alert_text().await.is_err());
    // Unknown and malformed DVMs: the 404 state, not a blank page.
    let unseen = Keys::from_seed(b"never-seen");
    for id in [
        npub(&unseen),
        "not-a-pubkey".to_owned(),
        "%3Cscript%3E".to_owned(),
    ] {
        b.open(&format!("/dvm-stats/{id}")).await;
        b.wait_present("[data-page=not-found]").await;
        if !id.starts_with("npub1") {
            // Not a pubkey in any form: the page says so without asking the api anything.
            assert_eq!(
                b.js(
                    "return performance.getEntriesByType('resource').map(e => e.name) \
                      .filter(n => /\\/api\\/(stats\\/dvm|dvms|liveness)\\//.test(n))"
                )
                .await,
                json!([]),
                "requests for the malformed DVM id {id}"
            );
        }
        b.assert_clean(&format!("/dvm-stats/{id}"), &["status of 404", "status of 400"])
            .await;
    }

    // ---- kinds: list rows and a kind's page equal the api's
    let kinds: KindList = api(&base, "/api/kinds?timeRange=24h&limit=50").await;
    b.open("/kind-stats?timeRange=24h").await;
    b.wait_count("[data-kind-row]", kinds.kinds.len()).await;
    for k in &kinds.kinds {
        let row = format!("[data-kind-row='{}']", k.kind);
        b.wait_text(
            &format!("{row} [data-col=total_requests]"),
            &num(k.total_requests),
        )
        .await;
        b.wait_text(
            &format!("{row} [data-col=total_responses]"),
            &num(k.total_responses),
        )
        .await;
        b.wait_text(
            &format!("{row} [data-col=num_supporting_dvms]"),
            &num(k.num_supporting_dvms),
        )
        .await;
    }
    // All time: every kind ever used, and the free ones as the api lists them.
    let usage: KindsUsage = api(&base, "/api/kinds/usage").await;
    b.wait_count("[data-used-kind]", usage.used.len()).await;
    let free: Vec<u16> = usage
        .unused
        .iter()
        .filter(|k| k.name.is_none())
        .map(|k| k.kind)
        .collect();
    let first_free = free.first().expect("some kind is free").to_string();
    // Inside a closed disclosure, so read the text content rather than the rendered text.
    let shown = b
        .js("return document.querySelector('[data-free-kinds]').textContent")
        .await;
    let shown = shown.as_str().unwrap_or_default();
    assert!(shown.starts_with(&first_free), "{shown}");
    b.assert_clean("/kind-stats", &[]).await;
    let k: KindStats = api(&base, "/api/stats/kind/5300?timeRange=24h").await;
    b.open("/kind-stats/5300?timeRange=24h").await;
    b.wait_text("[data-stat=total_requests]", &num(k.total_requests))
        .await;
    b.wait_text("[data-stat=total_responses]", &num(k.total_responses))
        .await;
    b.wait_text("[data-stat=num_supporting_dvms]", &num(k.num_supporting_dvms))
        .await;
    b.wait_count("[data-dvm-row]", k.top_dvms.len()).await;
    // The zap for a 5300 job, and what 5300's DVMs asked.
    b.wait_text("[data-payments] [data-stat=paid_msat]", "21 sats")
        .await;
    b.assert_clean("/kind-stats/5300", &[]).await;
    b.open("/kind-stats/4242").await;
    b.wait_present("[data-page=not-found]").await;
    b.assert_clean("/kind-stats/4242", &["status of 404"]).await;

    // ---- what's new, history, an unknown path
    b.open("/new?timeRange=24h").await;
    b.wait_present(&format!("[data-dvm-row='{}']", c.alpha.pubkey_hex()))
        .await;
    b.assert_clean("/new", &[]).await;
    b.open("/history").await;
    let month = dvmdash_core::dto::rfc3339(now)[..7].to_owned();
    b.wait_present(&format!("[data-month='{month}']")).await;
    b.assert_clean("/history", &[]).await;
    b.open("/no/such/page").await;
    b.wait_present("[data-page=not-found]").await;
    b.assert_clean("/no/such/page", &["status of 404"]).await;

    // ---- the directory: the api's services and statuses, a family tab kept in the URL
    let dir: Directory = api(&base, "/api/directory").await;
    assert!(dir.total >= 4, "{dir:?}");
    b.open("/directory").await;
    b.wait_count("[data-service-row]", dir.services.len()).await;
    for e in &dir.services {
        let status = serde_json::to_value(e.status).expect("status");
        let status = status.as_str().unwrap_or_default();
        b.wait_text(&format!("[data-service-row='{}'] [data-status]", e.id), status)
            .await;
    }
    let again: Directory = api(&base, "/api/directory").await;
    for e in &dir.services {
        let shown = b
            .text(&format!("[data-service-row='{}'] [data-col=uptime_7d]", e.id))
            .await
            .unwrap_or_default();
        let later = again
            .services
            .iter()
            .find(|x| x.id == e.id)
            .and_then(|x| x.uptime_7d);
        assert!(
            shown == uptime(e.uptime_7d) || shown == uptime(later),
            "{}: the directory shows uptime {shown}, the api {:?} then {later:?}",
            e.id,
            e.uptime_7d
        );
    }
    let hostile_row = format!("[data-service-row='{}']", c.hostile.pubkey_hex());
    b.wait_present(&hostile_row).await;
    assert_eq!(b.js("return window.__pwned === undefined").await, json!(true));
    b.click("[data-family=unannounced]").await;
    let unannounced: Directory = api(&base, "/api/directory?family=unannounced").await;
    b.wait_count("[data-service-row]", unannounced.services.len())
        .await;
    assert!(b.url().await.contains("family=unannounced"));
    b.assert_clean("/directory", &[]).await;

    // ---- live ContextVM calls: on the directory's ContextVM tab and on Alpha's page
    let traffic: ContextvmTraffic = api(&base, "/api/contextvm/traffic?timeRange=24h").await;
    assert_eq!(
        (traffic.calls, traffic.responses, traffic.errors),
        (5, 5, 1),
        "{traffic:?}"
    );
    b.open("/directory?family=contextvm&timeRange=24h").await;
    b.wait_count("[data-contextvm-traffic] [data-server]", traffic.servers.len())
        .await;
    for s in &traffic.servers {
        let row = format!("[data-contextvm-traffic] [data-server='{}']", s.server_id);
        b.wait_text(&format!("{row} [data-col=calls]"), &num(s.calls))
            .await;
        b.wait_text(&format!("{row} [data-col=errors]"), &num(s.errors))
            .await;
    }
    assert_eq!(b.js("return window.__pwned === undefined").await, json!(true));
    b.assert_clean("/directory?family=contextvm", &[]).await;
    let mine = traffic
        .servers
        .iter()
        .find(|s| s.server_id == c.alpha.pubkey_hex())
        .expect("Alpha serves MCP");
    b.open(&format!("/dvm-stats/{}?timeRange=24h", npub(&c.alpha)))
        .await;
    b.wait_text("[data-contextvm] [data-stat=calls]", &num(mine.calls))
        .await;
    b.wait_text("[data-contextvm] [data-stat=responses]", &num(mine.responses))
        .await;
    let since = b
        .text("[data-contextvm] [data-stat=seen_live_since]")
        .await
        .unwrap_or_default();
    assert!(
        since.starts_with("Seen live since")
            && (since == "Seen live since: unknown") == traffic.seen_live_since.is_none(),
        "the panel says since when calls were watched: {since:?}, api {:?}",
        traffic.seen_live_since
    );
    assert_eq!(b.js("return window.__pwned === undefined").await, json!(true));

    // ---- admin: the token form alone, a refused token, then the console managing the registry
    b.open("/admin").await;
    b.wait_present("[data-admin-login]").await;
    assert_eq!(
        b.count("[data-admin-relays]").await,
        0,
        "nothing but the form without a token"
    );
    let enter = |value: &str, form: &str| common::browser::fill_and_submit(form, value);
    b.js(&enter("wrong-token-0123456789", "[data-admin-login] form"))
        .await;
    b.wait_contains("[data-admin-login] [data-admin-error]", "refused")
        .await;
    b.js(&enter(ADMIN_TOKEN, "[data-admin-login] form")).await;
    b.wait_present(&format!("[data-admin-relay='{relay_url}']")).await;
    b.wait_text("[data-admin-status] [data-stat=relays]", "1").await;
    // A bad URL is refused inline; a new relay is added, watched, then removed and dropped.
    b.js(&enter("http://not-a-relay.example", "[data-admin-add]"))
        .await;
    b.wait_contains("[data-admin-relays] [data-admin-error]", "ws://")
        .await;
    // A relay registered already is said so inline (with a trailing slash the api normalises away).
    b.js(&enter(&format!("{relay_url}/"), "[data-admin-add]")).await;
    b.wait_contains("[data-admin-relays] [data-admin-error]", "already registered")
        .await;
    let (_second, second_url) = dvmdash::demo::start_relay(0).await.expect("second relay");
    b.js(&enter(&second_url, "[data-admin-add]")).await;
    b.wait_present(&format!("[data-admin-relay='{second_url}']"))
        .await;
    let status_url = format!("{base}/api/relays/status");
    wait_for(
        "the collector to watch the added relay",
        Duration::from_secs(30),
        || {
            let (status_url, url) = (status_url.clone(), second_url.clone());
            async move {
                let (h, _) = common::get_json::<RelayHealth>(&status_url).await;
                h?.relays
                    .iter()
                    .any(|r| r.relay == url && r.state == "connected")
                    .then_some(())
            }
        },
    )
    .await;
    b.wait_text(
        &format!("[data-admin-relay='{second_url}'] [data-col=collectors]"),
        "c1",
    )
    .await;
    b.click(&format!("[data-remove='{second_url}']")).await;
    b.wait_count("[data-admin-relay]", 1).await;
    // The collector lets it go: no longer assigned (the health view lists registered relays only).
    let collectors_url = format!("{base}/api/admin/collectors");
    wait_for(
        "the collector to drop the removed relay",
        Duration::from_secs(30),
        || {
            let (url, gone) = (collectors_url.clone(), second_url.clone());
            async move {
                let text = reqwest::Client::new()
                    .get(&url)
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                let c: serde_json::Value = serde_json::from_str(&text).ok()?;
                let assigned = c[0]["assigned"].as_array()?;
                (!assigned.iter().any(|u| u.as_str() == Some(gone.as_str()))).then_some(())
            }
        },
    )
    .await;
    // Both changes are in the audit list the panel shows.
    b.wait_present("[data-admin-audit] [data-audit=add]").await;
    b.wait_present("[data-admin-audit] [data-audit=remove]").await;
    b.assert_clean("/admin", &["status of 401", "status of 400"])
        .await;

    // ---- relays: health now, from the collector's reports (three corpus events published to the
    // watched relay: accepted, though already stored)
    let status_url = format!("{base}/api/relays/status?timeRange=24h");
    wait_for("the collector to connect", Duration::from_secs(60), || {
        let url = status_url.clone();
        async move {
            let (h, _) = common::get_json::<RelayHealth>(&url).await;
            h.filter(|h| h.relays.iter().any(|r| r.state == "connected"))
        }
    })
    .await;
    let publisher = dvmdash::simulate::Publisher::new(std::slice::from_ref(&relay_url));
    for e in c.events.iter().filter(|e| e.kind == 5300).take(3) {
        publisher.publish(e).await;
    }
    assert!(
        publisher.settle(Duration::from_secs(30)).await,
        "the relay took the events"
    );
    let health = wait_for("the collector to report them", Duration::from_secs(60), || {
        let url = status_url.clone();
        async move {
            let (h, _) = common::get_json::<RelayHealth>(&url).await;
            // The hourly counts follow the live ones within a heartbeat: this stack's one
            // collector started inside the window, so both count the same deliveries.
            h.filter(|h| {
                h.relays.iter().any(|r| {
                    r.since_start.accepted >= 3
                        && r.in_window.accepted == r.since_start.accepted
                        && !r.paging.is_empty()
                })
            })
        }
    })
    .await;
    let watched = health
        .relays
        .iter()
        .find(|r| r.relay == relay_url)
        .expect("the watched relay");
    assert_eq!(watched.collectors, vec!["c1".to_owned()], "{watched:?}");
    assert_eq!(
        (watched.in_window.received, watched.in_window.rejected),
        (watched.since_start.received, watched.since_start.rejected),
        "{watched:?}"
    );
    assert_eq!(health.window, "24h");
    assert_eq!(health.collectors.len(), 1, "{health:?}");
    b.open("/relays?timeRange=24h").await;
    b.wait_count("[data-health-row]", health.relays.len()).await;
    let row = format!("[data-health-row='{relay_url}']");
    b.wait_text(&format!("{row} [data-col=state]"), "connected").await;
    b.wait_text(
        &format!("{row} [data-col=accepted]"),
        &num(watched.in_window.accepted),
    )
    .await;
    b.wait_present("[data-health-window='24h']").await;
    // The paging state is shown.
    b.wait_contains(&format!("{row} [data-col=paging]"), " pass ")
        .await;
    b.wait_count("[data-collectors] [data-collector]", 1).await;

    // ---- relays: the api's coverage, row by row
    let cov: RelayCoverage = api(&base, "/api/relays/coverage?timeRange=24h").await;
    assert!(!cov.relays.is_empty(), "{cov:?}");
    b.open("/relays?timeRange=24h").await;
    b.wait_count("[data-relay-row]", cov.relays.len()).await;
    for r in &cov.relays {
        let row = format!("[data-relay-row='{}']", r.relay);
        b.wait_text(&format!("{row} [data-col=events]"), &num(r.events))
            .await;
        b.wait_text(&format!("{row} [data-col=only_here]"), &num(r.only_here))
            .await;
    }
    b.assert_clean("/relays", &[]).await;

    // ---- link previews: each page's own tags, names escaped
    let (status, html) =
        common::http_get(&format!("{base}/dvm-stats/{}?timeRange=24h", npub(&c.hostile))).await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("<script>window.__pwned"),
        "a DVM name never becomes markup"
    );
    assert!(
        html.contains("og:title\" content=\"&lt;script&gt;window.__pwned=1&lt;/script&gt;"),
        "{html}"
    );
    let (_, home) = common::http_get(&format!("{base}/?timeRange=24h")).await;
    assert!(
        home.contains(&format!("{} job requests", g.total_requests)),
        "{home}"
    );
    let (status, _) = common::http_get(&format!("{base}/dvm-stats/{}", npub(&unseen))).await;
    assert_eq!(status, 404, "an unknown DVM's page answers 404");

    // ---- screenshots: every page, both themes, desktop and phone widths; nothing wider than a phone
    let pages: BTreeMap<&str, String> = [
        ("overview", "/?timeRange=24h".to_owned()),
        ("dvms", "/dvm-stats?timeRange=24h".to_owned()),
        ("dvms-table", "/dvm-stats?timeRange=24h&view=table".to_owned()),
        ("dvm", format!("/dvm-stats/{}?timeRange=24h", npub(&c.alpha))),
        (
            "dvm-hostile",
            format!("/dvm-stats/{}?timeRange=24h", npub(&c.hostile)),
        ),
        ("kinds", "/kind-stats?timeRange=24h".to_owned()),
        ("kind", "/kind-stats/5300?timeRange=24h".to_owned()),
        ("new", "/new?timeRange=24h".to_owned()),
        ("history", "/history".to_owned()),
        ("directory", "/directory".to_owned()),
        (
            "directory-contextvm",
            "/directory?family=contextvm&timeRange=24h".to_owned(),
        ),
        ("relays", "/relays?timeRange=24h".to_owned()),
        ("admin", "/admin".to_owned()),
        ("not-found", "/dvm-stats/nobody".to_owned()),
    ]
    .into_iter()
    .collect();
    for theme in ["light", "dark"] {
        // Tall windows, so a screenshot shows most of the page.
        for (width, height) in [(1280u32, 2200u32), (390, 2400)] {
            for (name, path) in &pages {
                b.open(path).await;
                b.reload_as(theme, width, height).await;
                b.wait_present("main [data-page]").await;
                if !name.starts_with("not-found") {
                    b.wait_present("main .card, main table, main ul, main .dvm-cards")
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(600)).await;
                assert_eq!(
                    b.js("return document.documentElement.getAttribute('data-theme')")
                        .await,
                    json!(theme)
                );
                b.assert_fits(path, width).await;
                b.screenshot(&format!("{name}-{theme}-{width}")).await;
            }
        }
    }
    // Only the not-found page asks for what does not exist.
    b.assert_clean("screenshots", &["status of 404", "status of 400"])
        .await;
    eprintln!("screenshots in {}", b.shots.display());

    // ---- on a phone, a table scrolled sideways keeps each row's label in view
    b.open("/kind-stats?timeRange=24h").await;
    b.reload_as("light", 390, 2400).await;
    b.wait_present("main .table-wrap table.data tbody tr").await;
    let kept = b
        .js("const w = document.querySelector('main .table-wrap'); \
             w.scrollLeft = w.scrollWidth; \
             const cell = w.querySelector('tbody tr td').getBoundingClientRect(); \
             return [w.scrollLeft > 0, Math.round(cell.left - w.getBoundingClientRect().left)]")
        .await;
    assert_eq!(
        kept,
        json!([true, 0]),
        "the kinds table scrolls sideways on a phone and its first column stays at the left edge"
    );

    // ---- a picture that does not load shows the initials instead; one that loads stays
    let dead = "http://127.0.0.1:9/dead-picture.png";
    let live = format!("{base}/favicon.svg");
    let repaint = |keys: &Keys, name: &str, kind: &str, picture: &str| {
        let tags = vec![tag(&["d", "dashboard"]), tag(&["k", kind])];
        keys.sign(
            now,
            31990,
            tags,
            json!({"name": name, "picture": picture}).to_string(),
        )
    };
    feed(
        &stack,
        &[
            repaint(&c.alpha, "Alpha Discovery", "5300", dead),
            repaint(&c.quiet, "Quiet Feedback", "5050", &live),
        ],
    )
    .await;
    let (alpha, quiet) = (c.alpha.pubkey_hex().to_owned(), c.quiet.pubkey_hex().to_owned());
    let list_url = format!("{base}/api/dvms?timeRange=24h&limit=24");
    wait_for(
        "the api to show the new pictures",
        Duration::from_secs(60),
        || {
            let (url, alpha, quiet, live) = (list_url.clone(), alpha.clone(), quiet.clone(), live.clone());
            async move {
                let (l, _) = common::get_json::<DvmList>(&url).await;
                let l = l?;
                let picture = |id: &str| l.dvms.iter().find(|d| d.id == id)?.dvm_picture.clone();
                (picture(&alpha).as_deref() == Some(dead) && picture(&quiet) == Some(live)).then_some(())
            }
        },
    )
    .await;
    b.open("/dvm-stats?timeRange=24h").await;
    let (alpha_row, quiet_row) = (
        format!("[data-dvm-row='{alpha}']"),
        format!("[data-dvm-row='{quiet}']"),
    );
    // Both pictures come in one answer of the list: once Quiet's has loaded, Alpha's was tried.
    let settled = format!(
        "const q = document.querySelector(\"{quiet_row} img.avatar\"); \
         const a = document.querySelector(\"{alpha_row}\"); \
         return [!!q && q.complete && q.naturalWidth > 0, \
                 !!a && a.querySelectorAll('img').length === 0, \
                 a ? a.querySelector('.avatar.initials')?.textContent ?? null : null];"
    );
    b.wait_js(
        &settled,
        &json!([true, true, "AD"]),
        Duration::from_secs(60),
        "[Quiet's picture loaded, no broken image left for Alpha, Alpha's initials instead]",
    )
    .await;
    b.assert_clean("/dvm-stats (pictures)", &["dead-picture.png"])
        .await;
    b.client.clone().close().await.expect("close browser");
    stack.stop().await;
}
