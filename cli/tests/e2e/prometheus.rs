//! A real Prometheus (Debian's) scrapes every role of a running stack, each its own `dvmdash`
//! process, the way compose runs them:
//!
//! - every metric `docs/telemetry.md` lists is in the scrape, and nothing it does not list;
//! - every Prometheus panel of the Grafana dashboards evaluates without error;
//! - with ClickHouse stopped, the insert-failure and backlog alerts (the repository's rules, with
//!   short `for:`) fire, and both resolve once ClickHouse is back and the backlog is stored.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dvmdash::simulate::{Model, Publisher};
use dvmdash_core::config::{ClickHouseArgs, RedisArgs, Secret};
use dvmdash_core::stream::EventStream;
use dvmdash_core::telemetry::{now_millis, now_secs};
use dvmdash_testkit::observability::{documented_metrics, exposed_names, repo, targets_of};
use dvmdash_testkit::{ChDev, PrometheusServer, RedisServer, RoleProcess, free_port, wait_until};
use serde_json::Value;

const PREFIX: &str = "prom";
const DATABASE: &str = "prom";
/// The backlog alert's threshold in `prometheus/alerts.yml` (StreamBacklogHigh).
const BACKLOG_THRESHOLD: usize = 50_000;

/// GET on Prometheus's HTTP API; the `data` of a successful answer.
async fn api(prom: &PrometheusServer, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let url = url::Url::parse_with_params(&format!("{}{path}", prom.url), params).expect("url");
    let r = dvmdash_testkit::http::send("GET", url.as_str(), &[], "").await;
    let body: Value = serde_json::from_str(&r.body).map_err(|e| format!("{} {e}: {}", r.status, r.body))?;
    if body["status"] == "success" {
        Ok(body["data"].clone())
    } else {
        Err(format!("{} {}", r.status, body))
    }
}

/// The alert rules of the repository with every `for:` cut to 5 s, so a test sees them fire.
fn rules_with_short_for() -> String {
    let text = std::fs::read_to_string(repo().join("prometheus/alerts.yml")).expect("alerts.yml");
    let mut n = 0;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            if line.trim_start().starts_with("for: ") {
                n += 1;
                format!("{}for: 5s", " ".repeat(indent))
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(n >= 10, "only {n} `for:` lines found in alerts.yml");
    out.join("\n") + "\n"
}

/// States of the alerts named, by alert name (`inactive` when Prometheus lists none).
async fn alert_states(prom: &PrometheusServer, names: &[&str]) -> BTreeMap<String, String> {
    let data = api(prom, "/api/v1/alerts", &[]).await.unwrap_or(Value::Null);
    let mut out: BTreeMap<String, String> = names
        .iter()
        .map(|n| ((*n).to_owned(), "inactive".to_owned()))
        .collect();
    for a in data["alerts"].as_array().into_iter().flatten() {
        let name = a["labels"]["alertname"].as_str().unwrap_or("");
        if let Some(state) = out.get_mut(name) {
            let s = a["state"].as_str().unwrap_or("?");
            // One firing instance makes the alert firing.
            if s == "firing" || state == "inactive" {
                *state = s.to_owned();
            }
        }
    }
    out
}

/// Waits until `events_raw` holds exactly `want` distinct events.
async fn wait_stored(ch: &ClickHouseArgs, want: u64, what: &str, timeout: Duration) {
    wait_until(&format!("{what} to be stored"), timeout, || async {
        let n: u64 = ch
            .client()
            .query("SELECT uniqExact(event_id) FROM events_raw")
            .fetch_one()
            .await
            .map_err(|e| e.to_string())?;
        if n == want {
            Ok(())
        } else {
            Err(format!("{n} of {want}"))
        }
    })
    .await;
}

struct Role {
    name: &'static str,
    metrics_port: u16,
    _process: RoleProcess,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_documented_metrics_and_the_outage_alerts_fire_and_resolve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start(dir.path().join("redis"), 0).await;
    let ch_dir = dir.path().join("clickhouse");
    let mut clickhouse = ChDev::start(ch_dir.clone()).await;
    let ch_port = clickhouse.port();
    let ch = ClickHouseArgs::new(&clickhouse.url, DATABASE);
    dvmdash_core::store::migrate(&ch).await.expect("migrate");
    let (_relay, relay_url, _db) = dvmdash_testkit::relays::nostr_relay_with_database().await;

    // Traffic on the relay before the collector starts: its backfill reads it.
    let mut model = Model::new(7, 20);
    let now_ms = now_millis();
    // Jobs and NIP-89 announcements only: kinds every relay and the collector's backfill carry.
    let dvm_kind = |k: u16| (5000..=7000).contains(&k) || k == 31990;
    let mut traffic: Vec<_> = model
        .announcements(now_secs() - 600)
        .into_iter()
        .filter(|e| dvm_kind(e.kind))
        .collect();
    for i in 0..40u64 {
        traffic.extend(
            model
                .job(now_ms - 300_000 + i * 5_000)
                .into_iter()
                .map(|p| p.event)
                .filter(|e| dvm_kind(e.kind)),
        );
    }
    let publisher = Publisher::new(std::slice::from_ref(&relay_url));
    for e in &traffic {
        publisher.publish(e).await;
    }
    assert!(
        publisher.settle(Duration::from_secs(60)).await,
        "the relay took the traffic"
    );

    let bin = env!("CARGO_BIN_EXE_dvmdash");
    let api_port = free_port();
    let mut roles = Vec::new();
    for name in ["coordinator", "collector", "ingester", "api"] {
        let metrics_port = free_port();
        let mut env = vec![
            ("REDIS_URL", redis.url()),
            ("DVMDASH_REDIS_PREFIX", PREFIX.to_owned()),
            ("CLICKHOUSE_URL", clickhouse.url.clone()),
            ("CLICKHOUSE_DATABASE", DATABASE.to_owned()),
            ("DVMDASH_METRICS_ADDR", format!("127.0.0.1:{metrics_port}")),
        ];
        match name {
            "coordinator" => env.extend([
                ("DVMDASH_RELAYS", relay_url.clone()),
                ("DVMDASH_RELAY_REDUNDANCY", "1".to_owned()),
                ("DVMDASH_COORDINATOR_INTERVAL_MS", "200".to_owned()),
            ]),
            "collector" => env.extend([
                ("DVMDASH_COLLECTOR_ID", "c1".to_owned()),
                ("DVMDASH_COLLECTOR_HEARTBEAT_MS", "200".to_owned()),
                ("DVMDASH_COLLECTOR_LOOKBACK_SECS", "3600".to_owned()),
            ]),
            "ingester" => env.extend([
                ("DVMDASH_INGESTER_CONSUMER", "i1".to_owned()),
                ("DVMDASH_INGESTER_BATCH_WAIT_MS", "100".to_owned()),
            ]),
            _ => env.push(("DVMDASH_API_ADDR", format!("127.0.0.1:{api_port}"))),
        }
        roles.push(Role {
            name,
            metrics_port,
            _process: RoleProcess::spawn(bin, name, &env),
        });
    }

    // The repository's scrape layout (one job per role, named dvmdash-<role>), on loopback.
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - alerts.yml\nscrape_configs:\n",
    );
    for r in &roles {
        config.push_str(&format!(
            "  - job_name: dvmdash-{}\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
            r.name, r.metrics_port
        ));
    }
    let prom = PrometheusServer::start(
        dir.path().join("prometheus"),
        &config,
        &[("alerts.yml", rules_with_short_for())],
    )
    .await;

    wait_until("every role to be scraped", Duration::from_secs(60), || async {
        let data = api(&prom, "/api/v1/targets", &[]).await?;
        let targets = data["activeTargets"].as_array().cloned().unwrap_or_default();
        let up = targets.iter().filter(|t| t["health"] == "up").count();
        if up == roles.len() {
            Ok(())
        } else {
            Err(format!(
                "{up} of {} up: {targets:?}\n{}",
                roles.len(),
                prom.log_tail()
            ))
        }
    })
    .await;

    // The traffic is stored, and the api answers (once computed, once from its cache).
    let stored = traffic
        .iter()
        .map(|e| e.id.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    wait_stored(&ch, stored, "the traffic", Duration::from_secs(60)).await;
    for _ in 0..2 {
        let url = format!("http://127.0.0.1:{api_port}/api/stats/global/latest?timeRange=1h");
        let r = dvmdash_testkit::http::send("GET", &url, &[], "").await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // Every documented metric is scraped, and no undocumented one.
    let documented = documented_metrics();
    let want: BTreeSet<String> = documented
        .iter()
        .flat_map(|(name, ty)| exposed_names(name, *ty))
        .collect();
    // Series Prometheus adds to every target itself.
    let synthetic = [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ];
    let scraped: BTreeSet<String> = wait_until(
        "every documented metric in the scrape",
        Duration::from_secs(60),
        || async {
            let data = api(&prom, "/api/v1/series", &[("match[]", "{job=~\"dvmdash-.*\"}")]).await?;
            let names: BTreeSet<String> = data
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["__name__"].as_str().map(str::to_owned))
                .filter(|n| !synthetic.contains(&n.as_str()))
                .collect();
            let missing: Vec<&String> = want.difference(&names).collect();
            if missing.is_empty() {
                Ok(names)
            } else {
                Err(format!("missing {missing:?}"))
            }
        },
    )
    .await;
    let unlisted: Vec<&String> = scraped.difference(&want).collect();
    assert!(
        unlisted.is_empty(),
        "scraped but not in docs/telemetry.md: {unlisted:?}"
    );

    // Every Prometheus panel evaluates, with its dashboard's variables at "all" and at one value.
    let mut evaluated = 0;
    for pt in targets_of("prometheus") {
        let (name, title) = (&pt.dashboard, &pt.panel);
        let expr = pt.target["expr"].as_str().unwrap_or("");
        for relay in [".*", relay_url.as_str()] {
            let q = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s")
                .replace("$__range", "1h")
                .replace("${relay:regex}", relay)
                .replace("$relay", relay);
            let data = api(&prom, "/api/v1/query", &[("query", q.as_str())])
                .await
                .unwrap_or_else(|e| panic!("{name} / {title}: {e}\n{q}"));
            assert!(data["resultType"].is_string(), "{name} / {title}: {data}");
            evaluated += 1;
        }
    }
    assert!(evaluated >= 40, "only {evaluated} Prometheus queries evaluated");

    // Outage: ClickHouse goes away while the collectors keep writing.
    let alerts = ["ClickHouseInsertFailures", "StreamBacklogHigh"];
    let before = alert_states(&prom, &alerts).await;
    assert!(
        before.values().all(|s| s == "inactive"),
        "alerts before the outage: {before:?}"
    );
    clickhouse.kill();
    let backlog: Vec<String> = (0..)
        .flat_map(|i: u64| model.job(now_ms - 3_000_000 + i * 100))
        .filter(|p| dvm_kind(p.event.kind))
        .map(|p| p.event.to_json())
        .take(BACKLOG_THRESHOLD + 15_000)
        .collect();
    let redis_args = RedisArgs {
        redis_url: Secret::new(redis.url()),
        redis_prefix: PREFIX.to_owned(),
        stream_shards: 1,
    };
    let stream = EventStream::new(&redis_args.names());
    // The roles' own connection settings (30 s per reply): this Redis fsyncs every write.
    let mut conn = redis_args
        .connect(&tokio_util::sync::CancellationToken::new())
        .await
        .expect("redis")
        .expect("connected");
    for chunk in backlog.chunks(1_000) {
        stream
            .append(&mut conn, "wss://backlog.example", now_millis(), chunk)
            .await
            .expect("append the backlog");
    }
    let firing = wait_until("both alerts to fire", Duration::from_secs(120), || async {
        let states = alert_states(&prom, &alerts).await;
        if states.values().all(|s| s == "firing") {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    println!("during the outage: {firing:?}");

    // ClickHouse returns on the same port and data: the backlog is stored, both alerts resolve.
    clickhouse = ChDev::start_at(ch_dir, ch_port).await;
    // Busy bots repeat themselves: identical requests in the same second are one event.
    let distinct: std::collections::HashSet<String> = traffic
        .iter()
        .map(|e| e.id.clone())
        .chain(backlog.iter().map(|j| {
            dvmdash_core::Event::from_json(j)
                .expect("a generated event parses")
                .id
        }))
        .collect();
    let total = distinct.len() as u64;
    wait_stored(&ch, total, "the backlog", Duration::from_secs(240)).await;
    wait_until("both alerts to resolve", Duration::from_secs(60), || async {
        let states = alert_states(&prom, &alerts).await;
        if states.values().all(|s| s == "inactive") {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    drop(clickhouse);
}
