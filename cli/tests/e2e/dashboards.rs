//! Grafana cannot run here, so every dashboard is checked the way Grafana would use it: structure
//! (unique panel ids, provisioned datasource uids, formats matching panel types), every ClickHouse
//! panel's SQL expanded with the plugin's macros and variables and run for real, read-only, against
//! a database whose rollups hold months of history while the raw table holds a day, every panel of
//! the api datasource fetched from a running api, and every Prometheus expression parsed by promtool
//! and checked against the documented metrics (`prometheus.rs` evaluates them in a real Prometheus).

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use dvmdash::simulate::Model;
use dvmdash_core::store::{EventRelayRow, RawEventRow};
use dvmdash_testkit::isolated;
use dvmdash_testkit::observability::{
    dashboards, datasource_uid, documented_metrics, panels, repo, targets_of,
};
use serde_json::Value;

fn provisioned_uids() -> HashSet<String> {
    let text = std::fs::read_to_string(repo().join("grafana/provisioning/datasources/datasources.yaml"))
        .expect("datasource provisioning");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("uid:"))
        .map(|u| u.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect()
}

#[test]
fn dashboards_are_well_formed() {
    let uids = provisioned_uids();
    assert!(
        uids.contains("clickhouse") && uids.contains("prometheus") && uids.contains("dvmdash-api"),
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
                } else if uid == "dvmdash-api" {
                    assert!(
                        t["url"].as_str().is_some_and(|u| u.starts_with("/api/"))
                            && t["columns"].as_array().is_some_and(|c| !c.is_empty()),
                        "{name}: panel {id} needs an /api/ path and columns"
                    );
                } else {
                    assert!(
                        t["expr"].as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{name}: panel {id} has no expr"
                    );
                }
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let uid = v["datasource"]["uid"].as_str().unwrap_or("");
            assert!(
                uids.contains(uid),
                "{name}: variable {} uses unknown datasource {uid}",
                v["name"]
            );
        }
    }
}

/// Grafana reads ClickHouse as a read-only user defined beside the schema, never as `default`.
#[test]
fn grafana_logs_into_clickhouse_as_a_read_only_user() {
    let provisioning =
        std::fs::read_to_string(repo().join("grafana/provisioning/datasources/datasources.yaml"))
            .expect("provisioning");
    let user = provisioning
        .lines()
        .find_map(|l| l.trim().strip_prefix("username:"))
        .map(str::trim)
        .expect("the ClickHouse datasource names a user");
    assert_ne!(user, "default");
    assert!(provisioning.contains("password: $GRAFANA_CLICKHOUSE_PASSWORD"));
    let users =
        std::fs::read_to_string(repo().join("clickhouse/users.d/grafana.xml")).expect("users.d/grafana.xml");
    let block = |tag: &str| -> String {
        let open = format!("<{tag}>");
        let start = users
            .find(&open)
            .unwrap_or_else(|| panic!("<{tag}> in grafana.xml"))
            + open.len();
        let end = users[start..].find(&format!("</{tag}>")).expect("closing tag") + start;
        users[start..end].to_owned()
    };
    let user_block = block(user);
    let profile = user_block
        .split("<profile>")
        .nth(1)
        .and_then(|r| r.split("</profile>").next())
        .expect("the user has a profile");
    let profile_block = block(profile);
    assert!(
        profile_block.contains("<readonly>1</readonly>"),
        "{profile_block}"
    );
    assert!(
        profile_block.contains("<changeable_in_readonly/>"),
        "the plugin must be able to set max_execution_time"
    );
    assert!(user_block.contains("from_env=\"GRAFANA_CLICKHOUSE_PASSWORD\""));
    let compose = std::fs::read_to_string(repo().join("compose.yaml")).expect("compose.yaml");
    assert!(
        compose.contains("./clickhouse/users.d/grafana.xml:/etc/clickhouse-server/users.d/grafana.xml:ro")
    );
    assert!(compose.contains("yesoreyeram-infinity-datasource"));
}

/// A dashboard variable's selection for one run: every value ("All") or the values listed.
#[derive(Debug, Clone)]
struct Var {
    name: String,
    values: Option<Vec<String>>,
}

/// Splits a macro's arguments at its top-level commas.
fn macro_args(args: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in args.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("one argument").push(c);
    }
    out.into_iter().map(|a| a.trim().to_owned()).collect()
}

/// Finds `$__name(` in `s`; returns (start, argument text, end after the closing parenthesis).
fn find_macro(s: &str, name: &str) -> Option<(usize, String, usize)> {
    let start = s.find(&format!("$__{name}("))?;
    let open = start + name.len() + 4;
    let mut depth = 1;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return Some((start, s[open..open + i].to_owned(), open + i + 1));
        }
    }
    panic!("unbalanced $__{name} in {s}")
}

/// Grafana's variable interpolation for the formats the dashboards use.
fn interpolate(sql: &str, vars: &[Var]) -> String {
    let mut s = sql.to_owned();
    // Longest names first, so `$dvm` never eats the start of a longer name.
    let mut sorted = vars.to_vec();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.name.len()));
    for v in &sorted {
        for (pattern, format) in [
            (format!("${{{}:singlequote}}", v.name), "singlequote"),
            (format!("${{{}:csv}}", v.name), "csv"),
            (format!("${{{}:regex}}", v.name), "regex"),
            (format!("${{{}}}", v.name), "plain"),
            (format!("${}", v.name), "plain"),
        ] {
            if !s.contains(&pattern) {
                continue;
            }
            let Some(values) = &v.values else {
                panic!(
                    "${} is used outside $__conditionalAll, so \"All\" would break it: {sql}",
                    v.name
                )
            };
            let text = match format {
                "singlequote" => values
                    .iter()
                    .map(|x| format!("'{}'", x.replace('\\', "\\\\").replace('\'', "\\'")))
                    .collect::<Vec<_>>()
                    .join(","),
                "regex" => format!("({})", values.join("|")),
                _ => values.join(","),
            };
            s = s.replace(&pattern, &text);
        }
    }
    s
}

/// The ClickHouse plugin's query preparation for a fixed range: `$__conditionalAll` (the
/// condition, or `1=1` when its variable selects all), then variables, then the macros of
/// `pkg/macros/macros.go`.
fn expand(sql: &str, from: u64, to: u64, interval_s: u64, vars: &[Var]) -> String {
    let mut s = sql.to_owned();
    while let Some((start, args, end)) = find_macro(&s, "conditionalAll") {
        let args = macro_args(&args);
        assert_eq!(args.len(), 2, "$__conditionalAll takes two arguments: {sql}");
        let name = args[1]
            .trim_start_matches('$')
            .trim_matches(|c| c == '{' || c == '}');
        let var = vars
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("$__conditionalAll names an unknown variable {name}: {sql}"));
        let text = if var.values.is_some() {
            args[0].clone()
        } else {
            "1=1".to_owned()
        };
        s = format!("{}{text}{}", &s[..start], &s[end..]);
    }
    let s = interpolate(&s, vars);
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
        let (args, consumed) = match find_macro(&rest[i..], name) {
            Some((0, args, end)) => (macro_args(&args), end - 3),
            _ => (Vec::new(), name_len),
        };
        let first = args.first().cloned().unwrap_or_default();
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
                let spec = args.get(1).map_or("1h", String::as_str);
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
            other => panic!("unknown macro $__{other} in {sql}"),
        };
        out.push_str(&text);
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    out
}

fn all(names: &[&str]) -> Vec<Var> {
    names
        .iter()
        .map(|n| Var {
            name: (*n).to_owned(),
            values: None,
        })
        .collect()
}

fn one(name: &str, value: &str) -> Var {
    Var {
        name: name.to_owned(),
        values: Some(vec![value.to_owned()]),
    }
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
    let cond = "WHERE $__conditionalAll(k IN (${kind:csv}), $kind) AND $__conditionalAll(p IN (${dvm:singlequote}), ${dvm})";
    assert_eq!(expand(cond, 0, 0, 1, &all(&["kind", "dvm"])), "WHERE 1=1 AND 1=1");
    let chosen = [
        Var {
            name: "kind".into(),
            values: Some(vec!["5100".into(), "5300".into()]),
        },
        one("dvm", "it's"),
    ];
    assert_eq!(
        expand(cond, 0, 0, 1, &chosen),
        "WHERE k IN (5100,5300) AND p IN ('it\\'s')"
    );
    let unsafe_all = std::panic::catch_unwind(|| expand("x IN (${kind:csv})", 0, 0, 1, &all(&["kind"])));
    assert!(
        unsafe_all.is_err(),
        "a variable at All outside $__conditionalAll is a dashboard bug"
    );
}

const DAY: u64 = 86_400;

/// Signed traffic at `start_ms`, one job every `step_ms`, with the model's announcements.
fn traffic(model: &mut Model, start_ms: u64, jobs: u64, step_ms: u64) -> Vec<dvmdash_core::Event> {
    let mut events = model.announcements(start_ms / 1000);
    for i in 0..jobs {
        events.extend(model.job(start_ms + i * step_ms).into_iter().map(|p| p.event));
    }
    events
}

/// Writes events to events_raw (the materialized views fill the rollups), each delivered by
/// `relays` in `event_relays` as the ingester records them.
async fn store(args: &dvmdash_core::config::ClickHouseArgs, events: &[dvmdash_core::Event], relays: &[&str]) {
    let kinds = dvmdash_core::KindFilter::default();
    let now = dvmdash_core::telemetry::now_millis() as i64;
    let client = args.client();
    let mut raw = client
        .insert::<RawEventRow>(dvmdash_core::store::EVENTS_RAW)
        .await
        .expect("insert");
    let mut seen = client
        .insert::<EventRelayRow>(dvmdash_core::store::EVENT_RELAYS)
        .await
        .expect("insert");
    for (i, e) in events.iter().enumerate() {
        let id = dvmdash_core::event::parse_hex32(&e.id).expect("id");
        let (role, facts) = dvmdash_core::nip90::parse(e, &kinds);
        let row = RawEventRow::new(e, id, role, facts, relays[0], now);
        // Every event on the first relay, every third also on the second.
        for relay in relays.iter().take(if i % 3 == 0 { relays.len() } else { 1 }) {
            seen.write(&EventRelayRow {
                event_id: row.event_id,
                relay: (*relay).to_owned(),
                pubkey: row.pubkey,
                kind: row.kind,
                created_at: row.created_at,
                seen_at: now,
            })
            .await
            .expect("write");
        }
        raw.write(&row).await.expect("write");
    }
    raw.end().await.expect("end");
    seen.end().await.expect("end");
}

const RELAYS: [&str; 2] = ["wss://seed-a.example", "wss://seed-b.example"];

/// A fresh database whose rollups hold two months of history while events_raw holds only the
/// last day, as after the raw table's 30-day TTL: old traffic goes through events_raw (so the
/// materialized views count it), then the raw table is emptied, then the last day is stored.
async fn seed(args: &dvmdash_core::config::ClickHouseArgs) -> usize {
    dvmdash_core::store::migrate(args).await.expect("migrate");
    let mut model = Model::new(11, 80);
    let now = dvmdash_core::telemetry::now_millis();
    let old = traffic(&mut model, now - 90 * DAY * 1000, 1500, 3_000_000);
    store(args, &old, &RELAYS).await;
    let client = args.client();
    for table in ["events_raw", "event_relays"] {
        client
            .query(&format!("TRUNCATE TABLE {table}"))
            .execute()
            .await
            .expect("truncate");
    }
    let recent = traffic(&mut model, now - DAY * 1000, 3000, 28_000);
    store(args, &recent, &RELAYS).await;
    old.len() + recent.len()
}

/// Parses `JSONCompactEachRowWithNamesAndTypes` into (names, types, rows).
fn parse_compact(text: &str) -> (Vec<String>, Vec<String>, Vec<Vec<Value>>) {
    let mut lines = text.lines();
    let names: Vec<String> = serde_json::from_str(lines.next().unwrap_or("[]")).expect("names");
    let types: Vec<String> = serde_json::from_str(lines.next().unwrap_or("[]")).expect("types");
    let rows = lines.map(|l| serde_json::from_str(l).expect("row")).collect();
    (names, types, rows)
}

/// Runs a panel's SQL the way it reaches ClickHouse from Grafana's read-only user: an HTTP GET,
/// which ClickHouse (and the stand-in) run read-only, so a panel that writes fails here.
async fn run_sql(
    args: &dvmdash_core::config::ClickHouseArgs,
    sql: &str,
) -> Result<(Vec<String>, Vec<String>, Vec<Vec<Value>>), String> {
    let query = format!("{sql}\nFORMAT JSONCompactEachRowWithNamesAndTypes");
    let url = url::Url::parse_with_params(
        args.clickhouse_url.expose(),
        [
            ("database", args.clickhouse_database.as_str()),
            ("query", query.as_str()),
        ],
    )
    .map_err(|e| e.to_string())?;
    let (status, body) = dvmdash_testkit::http_get(url.as_str()).await;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    Ok(parse_compact(&body))
}

/// The value at an Infinity selector (`a.b.c`, dots between object keys).
fn pick<'a>(v: &'a Value, selector: &str) -> &'a Value {
    selector.split('.').fold(v, |v, key| &v[key])
}

/// Panels the way Grafana lays them out, each with the title of the row it sits under.
fn panels_with_rows(d: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut row = String::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            row = p["title"].as_str().unwrap_or("").to_owned();
            for inner in p["panels"].as_array().into_iter().flatten() {
                out.push((row.clone(), inner.clone()));
            }
        } else {
            out.push((row.clone(), p.clone()));
        }
    }
    out
}

/// Panels under a row that says it reads the raw events hold only what events_raw keeps.
fn reads_raw_events(row: &str) -> bool {
    row.contains("raw")
}

/// A panel's relative time override (`timeFrom`, e.g. `10y`) in seconds.
fn time_from(p: &Value) -> Option<u64> {
    let spec = p["timeFrom"].as_str()?;
    let (n, unit) = spec.split_at(spec.len() - 1);
    let n: u64 = n.parse().ok()?;
    Some(
        n * match unit {
            "h" => 3600,
            "d" => DAY,
            "w" => 7 * DAY,
            "M" => 31 * DAY,
            "y" => 366 * DAY,
            other => panic!("unknown time unit {other}"),
        },
    )
}

/// Checks one panel's answer: rows when `want_rows`, time series sorted with numeric values.
fn check_answer(
    what: &str,
    t: &Value,
    answer: &(Vec<String>, Vec<String>, Vec<Vec<Value>>),
    want_rows: bool,
) {
    let (names, types, rows) = answer;
    if want_rows {
        assert!(!rows.is_empty(), "{what}: no rows on seeded data");
    }
    if t["format"].as_u64() == Some(0) && !rows.is_empty() {
        assert!(
            types[0].starts_with("DateTime"),
            "{what}: first column {} is {}, not a time",
            names[0],
            types[0]
        );
        let times: Vec<String> = rows
            .iter()
            .map(|r| r[0].as_str().unwrap_or("").to_owned())
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "{what}: time series must be sorted ascending");
        for (n, ty) in names.iter().zip(types).skip(1) {
            let numeric = ["Int", "UInt", "Float", "Decimal"]
                .iter()
                .any(|p| ty.trim_start_matches("Nullable(").starts_with(p));
            assert!(
                numeric || ty.contains("String"),
                "{what}: column {n} has type {ty}"
            );
        }
    }
}

/// For each variable of a dashboard, one real value: the first its own query returns (as the
/// drop-down would offer), or for a Prometheus variable a relay the seed delivered.
async fn one_value_each(args: &dvmdash_core::config::ClickHouseArgs, d: &Value) -> Vec<Var> {
    let list = d["templating"]["list"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = list.iter().filter_map(|v| v["name"].as_str()).collect();
    let mut out = Vec::new();
    for v in &list {
        let name = v["name"].as_str().expect("variable name");
        assert!(
            v["current"]["value"] == serde_json::json!(["$__all"]) && v["includeAll"] == true,
            "variable {name} starts at All"
        );
        let value = if v["datasource"]["uid"] == "clickhouse" {
            let sql = expand(
                v["query"].as_str().expect("variable query"),
                0,
                0,
                60,
                &all(&names),
            );
            let (_, _, rows) = run_sql(args, &sql)
                .await
                .unwrap_or_else(|e| panic!("variable {name}: {e}\n{sql}"));
            assert!(!rows.is_empty(), "variable {name} offers nothing");
            match &rows[0][0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        } else {
            RELAYS[0].to_owned()
        };
        out.push(one(name, &value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clickhouse_panel_reads_history_older_than_the_raw_events_from_the_rollups() {
    let (redis, args) = isolated();
    let seeded = seed(&args).await;
    assert!(seeded > 8_000, "{seeded} events seeded");
    let client = args.client();
    let raw_oldest: u32 = client
        .query("SELECT toUInt32(min(created_at)) FROM events_raw")
        .fetch_one()
        .await
        .expect("oldest raw event");
    let now = dvmdash_core::telemetry::now_secs();
    assert!(
        u64::from(raw_oldest) > now - 2 * DAY,
        "events_raw holds only the last day"
    );
    // Recent: the last day. History: a range the raw events no longer cover.
    let windows = [
        ("last day", now - DAY, now),
        ("35 to 90 days ago", now - 90 * DAY, now - 35 * DAY),
    ];
    let mut checked = 0;
    let mut history = 0;
    for (name, d) in dashboards() {
        let names: Vec<String> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let chosen = one_value_each(&args, &d).await;
        for (row, p) in panels_with_rows(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if datasource_uid(&p, t).as_deref() != Some("clickhouse") {
                    continue;
                }
                let title = p["title"].as_str().unwrap_or("?");
                for (window, from, to) in windows {
                    let raw = reads_raw_events(&row);
                    if raw && from < now - 30 * DAY {
                        continue;
                    }
                    let from = time_from(&p).map_or(from, |span| to - span);
                    for (vars, selection) in [(all(&names), "all"), (chosen.clone(), "one value each")] {
                        let sql = expand(t["rawSql"].as_str().unwrap_or(""), from, to, 3600, &vars);
                        let what = format!("{name} / {title} ({window}, variables: {selection})");
                        let started = Instant::now();
                        let answer = run_sql(&args, &sql)
                            .await
                            .unwrap_or_else(|e| panic!("{what}: {e}\n{sql}"));
                        let elapsed = started.elapsed();
                        // With every variable at All there must be data; one chosen DVM and
                        // kind together may rightly have none.
                        check_answer(&what, t, &answer, selection == "all");
                        assert!(elapsed < Duration::from_secs(2), "{what}: took {elapsed:?}");
                        if !raw && from < now - 30 * DAY && selection == "all" {
                            history += 1;
                        }
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "only {checked} ClickHouse panels found");
    // The read-only path really refuses writes, so a panel that wrote would have failed above.
    let url = url::Url::parse_with_params(
        args.clickhouse_url.expose(),
        [
            ("database", args.clickhouse_database.as_str()),
            ("query", "TRUNCATE TABLE events_raw"),
        ],
    )
    .expect("url");
    let (status, body) = dvmdash_testkit::http_get(url.as_str()).await;
    assert!(status != 200 && body.contains("READONLY"), "{status}: {body}");
    assert!(
        history >= 10,
        "only {history} panels read history older than the raw events"
    );

    // Panels of the api datasource ask the running api what the web UI shows.
    // One registered relay (nothing listens there), so the relay table has a row to check.
    let relay = format!("ws://127.0.0.1:{}", dvmdash_testkit::free_port());
    let stack = dvmdash_testkit::start(dvmdash_testkit::args(redis, args.clone(), vec![relay])).await;
    let mut fetched = 0;
    for pt in targets_of("dvmdash-api") {
        let (name, title, t) = (&pt.dashboard, &pt.panel, &pt.target);
        let path = t["url"].as_str().expect("url");
        assert!(
            path.starts_with("/api/"),
            "{name} / {title}: {path} is not an api path"
        );
        let params: Vec<(String, String)> = t["url_options"]["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                (
                    kv["key"].as_str().unwrap_or("").to_owned(),
                    kv["value"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let url = url::Url::parse_with_params(&format!("{}{path}", stack.base), &params).expect("url");
        let (body, status) = dvmdash_testkit::get_json::<Value>(url.as_str()).await;
        assert_eq!(status, 200, "{name} / {title}: {url}");
        let body = body.expect("json");
        let root = match t["root_selector"].as_str().unwrap_or("") {
            "" => body.clone(),
            sel => pick(&body, sel).clone(),
        };
        // A table's root is an array of rows; a stat's is one object.
        let rows: Vec<&Value> = match &root {
            Value::Array(rows) => rows.iter().collect(),
            one => vec![one],
        };
        assert!(!rows.is_empty(), "{name} / {title}: no rows at {url}");
        for row in rows {
            for c in t["columns"].as_array().into_iter().flatten() {
                let sel = c["selector"].as_str().expect("selector");
                let v = pick(row, sel);
                let ok = match c["type"].as_str() {
                    Some("number") => v.is_number(),
                    Some("string") => v.is_string(),
                    _ => !v.is_null(),
                };
                assert!(ok, "{name} / {title}: {sel} is {v} in {url}");
                if sel == "total_requests" {
                    assert!(
                        v.as_u64().unwrap_or(0) > 0,
                        "{name} / {title}: no requests in the api's answer"
                    );
                }
            }
        }
        fetched += 1;
    }
    assert!(fetched >= 2, "only {fetched} api-backed panels found");
    stack.stop().await;
}

#[test]
fn every_prometheus_expression_parses_and_uses_documented_metrics() {
    let promtool = std::env::var("DVMDASH_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let documented = documented_metrics();
    let mut rules = String::from("groups:\n  - name: dashboard_exprs\n    rules:\n");
    let mut metrics = BTreeSet::new();
    let mut n = 0;
    for pt in targets_of("prometheus") {
        let Some(expr) = pt.target["expr"].as_str() else {
            continue;
        };
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
                metrics.insert((pt.dashboard.clone(), word.to_owned()));
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
            documented.contains_key(base),
            "{dash} uses {m}, which docs/telemetry.md does not list"
        );
    }
}
