//! Grafana cannot run here, so every dashboard is checked the way Grafana would use it: structure
//! (unique panel ids, provisioned datasource uids, formats matching panel types), every ClickHouse
//! panel's SQL expanded with the plugin's macros and run for real against a seeded database, and
//! every Prometheus expression parsed by promtool and checked against the documented metrics.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dvmdash::simulate::Model;
use dvmdash_core::store::RawEventRow;
use dvmdash_testkit::isolated;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("grafana/dashboards exists") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            let text = std::fs::read_to_string(&path).expect("read dashboard");
            let json: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                json,
            ));
        }
    }
    assert!(!out.is_empty(), "no dashboards found");
    out
}

/// Panels, including those nested in rows.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner.clone());
        }
    }
    out
}

fn provisioned_uids() -> HashSet<String> {
    let text = std::fs::read_to_string(repo().join("grafana/provisioning/datasources/datasources.yaml"))
        .expect("datasource provisioning");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("uid:"))
        .map(|u| u.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect()
}

/// The datasource uid of a target (falling back to the panel's).
fn datasource_uid(panel: &Value, target: &Value) -> Option<String> {
    let ds = if target["datasource"].is_object() {
        &target["datasource"]
    } else {
        &panel["datasource"]
    };
    ds["uid"].as_str().map(str::to_owned)
}

#[test]
fn dashboards_are_well_formed() {
    let uids = provisioned_uids();
    assert!(
        uids.contains("clickhouse") && uids.contains("prometheus"),
        "{uids:?}"
    );
    let mut dashboard_uids = HashSet::new();
    for (name, d) in dashboards() {
        assert!(
            d["uid"]
                .as_str()
                .is_some_and(|u| dashboard_uids.insert(u.to_owned())),
            "{name}: missing or repeated uid"
        );
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        let mut ids = HashSet::new();
        for p in panels(&d) {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: panel without id"));
            assert!(ids.insert(id), "{name}: panel id {id} repeated");
            if p["type"] == "row" {
                continue;
            }
            let targets = p["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: panel {id} has no targets"));
            assert!(!targets.is_empty(), "{name}: panel {id} has no targets");
            for t in targets {
                let uid = datasource_uid(&p, t)
                    .unwrap_or_else(|| panic!("{name}: panel {id} target without datasource"));
                assert!(
                    uids.contains(&uid),
                    "{name}: panel {id} uses unknown datasource {uid}"
                );
                if uid == "clickhouse" {
                    assert!(
                        t["rawSql"].as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{name}: panel {id} has no SQL"
                    );
                    let format = t["format"].as_u64().unwrap_or(1);
                    match p["type"].as_str().unwrap_or("") {
                        "timeseries" => assert_eq!(
                            format, 0,
                            "{name}: panel {id} is a time series and needs format 0"
                        ),
                        "table" => assert_eq!(format, 1, "{name}: panel {id} is a table and needs format 1"),
                        _ => {}
                    }
                } else {
                    assert!(
                        t["expr"].as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{name}: panel {id} has no expr"
                    );
                }
            }
        }
    }
}

/// The macro expansion of grafana-clickhouse-datasource (`pkg/macros/macros.go`) for a fixed range.
fn expand(sql: &str, from: u64, to: u64, interval_s: u64, vars: &[(String, String)]) -> String {
    let mut s = sql.to_owned();
    for (k, v) in vars {
        s = s.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
    }
    let date = |t: u64| dvmdash_core::dto::rfc3339(t)[..10].to_owned();
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 3..];
        let name_len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..name_len];
        let after = &tail[name_len..];
        let (arg, consumed) = if let Some(args) = after.strip_prefix('(') {
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("unbalanced macro in {sql}"));
            (Some(args[..end].to_owned()), name_len + 2 + end)
        } else {
            (None, name_len)
        };
        let a = arg.clone().unwrap_or_default();
        let first = a.split(',').next().unwrap_or("").trim().to_owned();
        let text = match name {
            "timeFilter" => format!("{first} >= toDateTime({from}) AND {first} <= toDateTime({to})"),
            "timeFilter_ms" => format!(
                "{first} >= fromUnixTimestamp64Milli({}) AND {first} <= fromUnixTimestamp64Milli({})",
                from * 1000,
                to * 1000
            ),
            "dateFilter" => format!(
                "{first} >= toDate('{}') AND {first} <= toDate('{}')",
                date(from),
                date(to)
            ),
            "fromTime" => format!("toDateTime({from})"),
            "toTime" => format!("toDateTime({to})"),
            "fromTime_ms" => format!("fromUnixTimestamp64Milli({})", from * 1000),
            "toTime_ms" => format!("fromUnixTimestamp64Milli({})", to * 1000),
            "interval_s" => interval_s.to_string(),
            "timeInterval" => format!("toStartOfInterval(toDateTime({first}), INTERVAL {interval_s} second)"),
            "timeInterval_ms" => {
                format!("toStartOfInterval(toDateTime64({first}, 3), INTERVAL {interval_s} second)")
            }
            "timeGroup" => {
                let spec = a.split(',').nth(1).unwrap_or("1h").trim();
                let (n, unit) = spec.split_at(spec.len() - 1);
                let secs = n.parse::<u64>().unwrap_or(1)
                    * match unit {
                        "s" => 1,
                        "m" => 60,
                        "h" => 3600,
                        "d" => 86400,
                        _ => 1,
                    };
                format!("toStartOfInterval(toDateTime({first}), INTERVAL {secs} second)")
            }
            "conditionalAll" => "1=1".into(),
            other => panic!("unknown macro $__{other} in {sql}"),
        };
        out.push_str(&text);
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    out
}

fn template_vars(d: &Value) -> Vec<(String, String)> {
    d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let name = v["name"].as_str()?.to_owned();
            let cur = &v["current"]["value"];
            let value = match cur {
                Value::String(s) if s == "$__all" => "'all'".into(),
                Value::String(s) => s.clone(),
                Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","),
                _ => v["query"].as_str().unwrap_or("").to_owned(),
            };
            Some((name, value))
        })
        .collect()
}

#[test]
fn macros_expand_like_the_plugin() {
    let s = expand(
        "SELECT $__timeInterval(t) AS time WHERE $__timeFilter(t) AND $__dateFilter(d) LIMIT $__interval_s",
        100,
        200,
        60,
        &[],
    );
    assert_eq!(
        s,
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 60 second) AS time WHERE t >= toDateTime(100) AND t <= \
         toDateTime(200) AND d >= toDate('1970-01-01') AND d <= toDate('1970-01-01') LIMIT 60"
    );
    assert_eq!(
        expand("$__timeGroup(created_at, 5m)", 0, 0, 1, &[]),
        "toStartOfInterval(toDateTime(created_at), INTERVAL 300 second)"
    );
    assert_eq!(
        expand("x = '$kind'", 0, 0, 1, &[("kind".into(), "5300".into())]),
        "x = '5300'"
    );
}

/// Seeds a fresh database with simulated traffic over the last day, straight into events_raw.
async fn seed(args: &dvmdash_core::config::ClickHouseArgs) -> usize {
    dvmdash_core::store::migrate(args).await.expect("migrate");
    let kinds = dvmdash_core::KindFilter::default();
    let mut model = Model::new(11, 80);
    let now = dvmdash_core::telemetry::now_millis();
    let mut events = model.announcements(now / 1000 - 86_400);
    for i in 0..3000u64 {
        events.extend(
            model
                .job(now - 86_400_000 + i * 28_000)
                .into_iter()
                .map(|p| p.event),
        );
    }
    let client = args.client();
    let mut insert = client
        .insert::<RawEventRow>(dvmdash_core::store::EVENTS_RAW)
        .await
        .expect("insert");
    for e in &events {
        let id = dvmdash_core::event::parse_hex32(&e.id).expect("id");
        let (role, facts) = dvmdash_core::nip90::parse(e, &kinds);
        let row = RawEventRow::new(e, id, role, facts, "wss://seed.example", now as i64);
        insert.write(&row).await.expect("write");
    }
    insert.end().await.expect("end");
    events.len()
}

/// Parses `JSONCompactEachRowWithNamesAndTypes` into (names, types, rows).
fn parse_compact(text: &str) -> (Vec<String>, Vec<String>, Vec<Vec<Value>>) {
    let mut lines = text.lines();
    let names: Vec<String> = serde_json::from_str(lines.next().unwrap_or("[]")).expect("names");
    let types: Vec<String> = serde_json::from_str(lines.next().unwrap_or("[]")).expect("types");
    let rows = lines.map(|l| serde_json::from_str(l).expect("row")).collect();
    (names, types, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clickhouse_panel_runs_against_real_data() {
    let (_, args) = isolated();
    let seeded = seed(&args).await;
    assert!(seeded > 5000);
    let client = args.client();
    let to = dvmdash_core::telemetry::now_secs();
    let from = to - 86_400;
    let mut checked = 0;
    for (name, d) in dashboards() {
        let vars = template_vars(&d);
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if datasource_uid(&p, t).as_deref() != Some("clickhouse") {
                    continue;
                }
                let title = p["title"].as_str().unwrap_or("?");
                let sql = expand(t["rawSql"].as_str().unwrap_or(""), from, to, 600, &vars);
                let started = Instant::now();
                let mut cursor = client
                    .query(&sql)
                    .fetch_bytes("JSONCompactEachRowWithNamesAndTypes")
                    .unwrap_or_else(|e| panic!("{name} / {title}: {e}\n{sql}"));
                let bytes = cursor
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("{name} / {title}: {e}\n{sql}"));
                let elapsed = started.elapsed();
                let (names, types, rows) = parse_compact(&String::from_utf8_lossy(&bytes));
                assert!(
                    !rows.is_empty(),
                    "{name} / {title}: no rows on seeded data\n{sql}"
                );
                assert!(
                    elapsed < Duration::from_secs(1),
                    "{name} / {title}: took {elapsed:?}"
                );
                if t["format"].as_u64() == Some(0) {
                    assert!(
                        types[0].starts_with("DateTime"),
                        "{name} / {title}: first column {} is {}, not a time",
                        names[0],
                        types[0]
                    );
                    let times: Vec<String> = rows
                        .iter()
                        .map(|r| r[0].as_str().unwrap_or("").to_owned())
                        .collect();
                    let mut sorted = times.clone();
                    sorted.sort();
                    assert_eq!(
                        times, sorted,
                        "{name} / {title}: time series must be sorted ascending"
                    );
                    for (n, ty) in names.iter().zip(&types).skip(1) {
                        let numeric = ["Int", "UInt", "Float", "Decimal"]
                            .iter()
                            .any(|p| ty.trim_start_matches("Nullable(").starts_with(p));
                        let label = ty.contains("String");
                        assert!(numeric || label, "{name} / {title}: column {n} has type {ty}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "only {checked} ClickHouse panels found");
}

#[test]
fn every_prometheus_expression_parses_and_uses_documented_metrics() {
    let promtool = std::env::var("DVMDASH_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let telemetry = std::fs::read_to_string(repo().join("docs/telemetry.md")).expect("docs/telemetry.md");
    let mut rules = String::from("groups:\n  - name: dashboard_exprs\n    rules:\n");
    let mut metrics = BTreeSet::new();
    let mut n = 0;
    for (name, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else { continue };
                let expr = expr
                    .replace("$__rate_interval", "5m")
                    .replace("$__interval", "1m")
                    .replace("$__range", "1h");
                n += 1;
                rules.push_str(&format!(
                    "      - record: dashboard:expr_{n}\n        expr: {}\n",
                    serde_json::to_string(&expr).expect("json string")
                ));
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.starts_with("dvmdash_") {
                        metrics.insert((name.clone(), word.to_owned()));
                    }
                }
            }
        }
    }
    assert!(n > 0, "no Prometheus expressions found");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("exprs.yml");
    std::fs::write(&file, rules).expect("write rules");
    let out = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {promtool} (install prometheus): {e}"));
    assert!(
        out.status.success(),
        "promtool rejects a dashboard expression:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for (dash, m) in metrics {
        // Histogram series carry suffixes; the documented name is the base.
        let base = m
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            telemetry.contains(base),
            "{dash} uses {m}, which docs/telemetry.md does not list"
        );
    }
}
