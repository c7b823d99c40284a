//! The admin console's pipeline and storage panels in headless Chromium against a real stack.
//! Poison entries (requests over the ingester's size limit, and junk) become dead letters that the
//! panel lists with their reasons. After the cause is fixed (the stack restarted with the default
//! limit) one click replays them, and each event is counted exactly once, although one of them was
//! dead-lettered twice. Junk is discarded with a confirming second click. The stream panel shows
//! the ingesters' group and consumers, and the ClickHouse panel shows the api's table numbers and
//! the migrations. The api's paging and filters are checked beside it. Screenshots in both themes
//! and at phone width go to `target/screenshots/admin-console-*.png`.

use dvmdash_testkit as common;

use std::time::Duration;

use dvmdash_core::config::Secret;
use dvmdash_core::redis_keys::INGESTER_GROUP;
use dvmdash_core::stream::EventStream;
use dvmdash_testkit::browser::Page;
use dvmdash_testkit::{isolated, required, wait_until};
use serde_json::{Value, json};

const TOKEN: &str = "console-admin-token-0123456789";

async fn admin_get(base: &str, path: &str) -> serde_json::Value {
    dvmdash_testkit::admin_get(base, path, TOKEN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_from_the_panel_after_the_fix_and_counted_once() {
    let ui_dir = required("DVMDASH_TEST_UI_DIR");
    assert!(
        std::path::Path::new(&ui_dir).join("index.html").is_file(),
        "the UI must be built into {ui_dir} (scripts/build-ui.sh)"
    );
    let (redis, clickhouse) = isolated();
    let mut args = common::args(redis.clone(), clickhouse.clone(), vec![]);
    args.events.max_event_bytes = 2_000;
    let first = common::start(args).await;
    let big = common::append_poison(
        &first,
        b"console-customer",
        ["not json", "{\"id\":\"<img src=x onerror=window.__pwned=1>\"}"],
    )
    .await;
    let stream = EventStream::new(&first.redis.names());
    let mut conn = first.redis_conn().await;
    wait_until("six dead letters", Duration::from_secs(60), || {
        let (mut c, s) = (conn.clone(), stream.clone());
        async move {
            let n = s.dead_letters(&mut c).await.map_err(|e| e.to_string())?;
            if n == 6 {
                Ok(())
            } else {
                Err(format!("{n} dead letters"))
            }
        }
    })
    .await;
    first.stop().await;

    // The fix: the same stream and database, the default size limit, and the admin console.
    let mut args = common::args(redis, clickhouse, vec![]);
    args.api.admin_token = Some(Secret::new(TOKEN));
    let stack = common::start(args).await;
    let base = stack.base.clone();

    // ---- the api: pages of two chain to the end; the reason filter and the summary agree
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/admin/dead-letters?limit=2&after={a}"),
            None => "/api/admin/dead-letters?limit=2".to_owned(),
        };
        let page = admin_get(&base, &path).await;
        assert_eq!(page["total"], 6, "{page}");
        let letters = page["letters"].as_array().expect("letters");
        assert!(letters.len() <= 2);
        seen.extend(
            letters
                .iter()
                .map(|l| l["id"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 6, "every letter once, in order: {seen:?}");
    assert_eq!(sorted, seen);
    let large = admin_get(&base, "/api/admin/dead-letters?reason=TOO_LARGE").await;
    assert_eq!(large["letters"].as_array().map(Vec::len), Some(4), "{large}");
    assert_eq!(
        large["by_reason"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>()),
        Some(4)
    );
    let event_ids: Vec<&str> = large["letters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["event_id"].as_str())
        .collect();
    assert!(
        big.iter().all(|e| event_ids.contains(&e.id.as_str())),
        "each big request is shown by its id: {large}"
    );
    let all = admin_get(&base, "/api/admin/dead-letters").await;
    assert!(
        all["letters"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|l| l["event_id"].is_null() || l["event_id"].as_str().is_some_and(|id| id.len() == 64)),
        "a hostile id is never shown as an event id: {all}"
    );

    // ---- the stream and ClickHouse views
    let stream_view = admin_get(&base, "/api/admin/stream").await;
    assert_eq!(
        stream_view["shards"].as_array().map(Vec::len),
        Some(1),
        "{stream_view}"
    );
    let group = &stream_view["shards"][0]["groups"][0];
    assert_eq!(group["name"], INGESTER_GROUP, "{stream_view}");
    assert!(
        group["consumer_list"].as_array().is_some_and(|c| !c.is_empty()),
        "{stream_view}"
    );
    assert_eq!(stream_view["dead_letters"], 6);
    let storage = admin_get(&base, "/api/admin/clickhouse").await;
    let raw = storage["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "events_raw"))
        .cloned()
        .expect("events_raw in the table list");
    assert_eq!(raw["ttl_days"], 30, "{raw}");
    assert_eq!(storage["raw_events"]["ttl_days"], 30);
    assert_eq!(storage["raw_events"]["rows"], 0, "nothing stored yet: {storage}");
    assert_eq!(storage["pending_migrations"], json!([]));
    let migrations = storage["migrations"].as_array().expect("migrations");
    assert_eq!(migrations.len(), dvmdash_core::store::MIGRATIONS.len());
    let newest_migration = migrations
        .last()
        .and_then(|m| m["name"].as_str())
        .unwrap_or_default()
        .to_owned();

    // ---- the browser: the console lists the letters with their reasons
    let b = Page::start(&base).await;
    b.admin_login(TOKEN).await;
    b.wait_present("[data-admin-dead-letters] [data-dlq-total='6']")
        .await;
    b.wait_count("[data-admin-dead-letters] [data-letter]", 6).await;
    b.wait_text(
        "[data-admin-dead-letters] [data-reason*='too_large'] [data-col=count]",
        "4",
    )
    .await;
    b.wait_present(&format!(
        "[data-admin-stream] [data-group={INGESTER_GROUP}] [data-consumer]"
    ))
    .await;
    b.wait_text(
        "[data-admin-clickhouse] [data-table=events_raw] [data-col=rows]",
        "0",
    )
    .await;
    b.wait_present(&format!(
        "[data-admin-clickhouse] [data-migrations='{newest_migration}']"
    ))
    .await;
    for theme in ["light", "dark"] {
        for (width, height) in [(1280u32, 2400u32), (390, 3200)] {
            b.reload_as(theme, width, height).await;
            b.wait_count("[data-admin-dead-letters] [data-letter]", 6).await;
            tokio::time::sleep(Duration::from_millis(600)).await;
            b.assert_fits("/admin", width).await;
            b.screenshot(&format!("admin-console-{theme}-{width}")).await;
        }
    }
    b.client.set_window_size(1280, 2400).await.expect("window size");

    // ---- replay by reason: four letters, three events, each stored and counted once
    b.click("[data-admin-dead-letters] [data-reason*='too_large'] [data-replay]")
        .await;
    b.wait_contains("[data-dlq-result]", "4 replayed of 4 matched")
        .await;
    b.wait_present("[data-admin-dead-letters] [data-dlq-total='2']")
        .await;
    wait_until(
        "the replayed requests to be stored",
        Duration::from_secs(60),
        || {
            let s = &stack;
            async move {
                let n = s.count("SELECT count() FROM events_raw").await;
                if n == 3 { Ok(()) } else { Err(format!("{n} rows")) }
            }
        },
    )
    .await;

    // ---- discard needs a second click; the junk goes, one letter at a time
    b.click("[data-admin-dead-letters] [data-letter] [data-discard]")
        .await;
    b.wait_present("[data-admin-dead-letters] [data-letter] [data-discard][data-armed=true]")
        .await;
    assert_eq!(
        stream.dead_letters(&mut conn).await.expect("count"),
        2,
        "one click discards nothing"
    );
    b.click("[data-admin-dead-letters] [data-letter] [data-discard][data-armed=true]")
        .await;
    b.wait_contains("[data-dlq-result]", "1 discarded of 1 matched")
        .await;
    b.wait_count("[data-admin-dead-letters] [data-letter]", 1).await;
    b.click("[data-admin-dead-letters] [data-letter] [data-discard]")
        .await;
    b.click("[data-admin-dead-letters] [data-letter] [data-discard][data-armed=true]")
        .await;
    b.wait_count("[data-admin-dead-letters] [data-letter]", 0).await;
    b.wait_contains("[data-admin-dead-letters]", "No dead letters")
        .await;
    assert_eq!(stream.dead_letters(&mut conn).await.expect("count"), 0);

    // ---- audited, counted once, and the panels follow the data
    b.wait_present("[data-admin-audit] [data-audit=replay]").await;
    b.wait_present("[data-admin-audit] [data-audit=discard]").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stack.count("SELECT count() FROM events_raw").await, 3);
    assert_eq!(
        stack
            .count("SELECT toUInt64(sum(events)) FROM stats_hourly WHERE role = 'request'")
            .await,
        3
    );
    let g = stack.global("1h").await;
    assert_eq!(g.total_requests, 3, "each replayed request counted once");
    b.wait_text(
        "[data-admin-clickhouse] [data-table=events_raw] [data-col=rows]",
        "3",
    )
    .await;
    let storage = admin_get(&base, "/api/admin/clickhouse").await;
    assert_eq!(storage["raw_events"]["rows"], 3);
    assert_eq!(storage["raw_events"]["beyond_ttl"], false);
    let hourly = storage["rollups"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["table"] == "stats_hourly"))
        .cloned()
        .expect("stats_hourly among the rollups");
    assert_eq!(
        hourly["behind_secs"], 0,
        "the hourly rollup holds the newest event: {hourly}"
    );
    assert_eq!(b.js("return window.__pwned === undefined").await, json!(true));
    b.assert_clean("/admin", &[]).await;
    b.client.clone().close().await.expect("close browser");
    stack.stop().await;
}
