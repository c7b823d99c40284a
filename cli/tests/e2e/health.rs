//! `/health` and `/ready` on every role's metrics listener, with the real binary as separate
//! processes: all ready while their dependencies answer; with Redis stopped every role is alive
//! but not ready (and says which dependency failed); with ClickHouse killed only the roles that
//! need it are not ready; both recover. `dvmdash probe` (the compose health check) agrees.

use dvmdash_testkit as common;

use std::process::Command;
use std::time::Duration;

use dvmdash_core::config::ClickHouseArgs;
use dvmdash_testkit::{ChDev, RedisServer, RoleProcess, free_port, wait_until};
use serde_json::Value;

struct Running {
    role: &'static str,
    metrics: String,
    _process: RoleProcess,
}

async fn get(url: &str) -> (u16, Value) {
    let r = common::http::send("GET", url, &[], "").await;
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

/// Waits until every role's `/ready` answers `want` and each failing check is the one named.
async fn wait_ready(roles: &[Running], want: impl Fn(&str) -> (u16, Option<&'static str>)) {
    for r in roles {
        let (status, failing) = want(r.role);
        let url = format!("{}/ready", r.metrics);
        wait_until(
            &format!("{} /ready to answer {status}", r.role),
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move {
                    let (got, body) = get(&url).await;
                    let named = failing.is_none_or(|dep| body["checks"][dep]["ok"] == false);
                    if got == status && named && body["ready"] == (status == 200) {
                        Ok(())
                    } else {
                        Err(format!("{got} {body}"))
                    }
                }
            },
        )
        .await;
        let (health, _) = get(&format!("{}/health", r.metrics)).await;
        assert_eq!(health, 200, "{} stays alive", r.role);
    }
}

fn probe(url: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_dvmdash"))
        .args(["probe", url, "--timeout-secs", "5"])
        .env("DVMDASH_METRICS_ADDR", "")
        .output()
        .expect("run dvmdash probe")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_is_alive_and_ready_only_while_its_dependencies_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut redis = RedisServer::start(dir.path().join("redis"), 0).await;
    let mut clickhouse = ChDev::start(dir.path().join("clickhouse")).await;
    let ch = ClickHouseArgs::new(&clickhouse.url, "health");
    dvmdash_core::store::migrate(&ch).await.expect("migrate");
    let bin = env!("CARGO_BIN_EXE_dvmdash");
    let mut roles = Vec::new();
    for role in ["collector", "coordinator", "ingester", "api"] {
        let port = free_port();
        let mut env = vec![
            ("REDIS_URL", redis.url()),
            ("DVMDASH_REDIS_PREFIX", "health".to_owned()),
            ("CLICKHOUSE_URL", clickhouse.url.clone()),
            ("CLICKHOUSE_DATABASE", "health".to_owned()),
            ("DVMDASH_METRICS_ADDR", format!("127.0.0.1:{port}")),
        ];
        if role == "api" {
            env.push(("DVMDASH_API_ADDR", format!("127.0.0.1:{}", free_port())));
        }
        roles.push(Running {
            role,
            metrics: format!("http://127.0.0.1:{port}"),
            _process: RoleProcess::spawn(bin, role, &env),
        });
    }
    wait_ready(&roles, |_| (200, None)).await;
    let (_, body) = get(&format!("{}/ready", roles[3].metrics)).await;
    assert_eq!(body["checks"]["redis"]["ok"], true, "{body}");
    assert_eq!(body["checks"]["clickhouse"]["ok"], true, "{body}");
    let (_, body) = get(&format!("{}/ready", roles[0].metrics)).await;
    assert!(
        body["checks"]["clickhouse"].is_null(),
        "the collector does not need ClickHouse: {body}"
    );
    assert!(probe(&format!("{}/ready", roles[2].metrics)));

    // The operational metrics each role owes (docs/telemetry.md), in a real scrape.
    let want: &[(&str, &[&str])] = &[
        ("collector", &["dvmdash_build_info{"]),
        (
            "coordinator",
            &[
                "dvmdash_build_info{",
                "dvmdash_coordinator_collector_heartbeat_age_seconds{collector=\"",
                "dvmdash_coordinator_collector_relays_assigned{collector=\"",
            ],
        ),
        (
            "ingester",
            &[
                "dvmdash_build_info{",
                "dvmdash_stream_oldest_pending_age_seconds{",
            ],
        ),
        (
            "api",
            &[
                "dvmdash_build_info{",
                "dvmdash_api_cache_hits_total",
                "dvmdash_api_cache_misses_total",
                "dvmdash_api_cache_refreshes_total",
                "dvmdash_api_cache_stale_total",
                "dvmdash_api_cache_entries",
                "dvmdash_api_cache_bytes",
            ],
        ),
    ];
    for r in &roles {
        let names = want
            .iter()
            .find(|(role, _)| *role == r.role)
            .map(|(_, n)| *n)
            .unwrap_or(&[]);
        let url = format!("{}/metrics", r.metrics);
        let role = r.role;
        wait_until(&format!("{role}'s metrics"), Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                let text = common::http::send("GET", &url, &[], "").await.body;
                let missing: Vec<&&str> = names.iter().filter(|n| !text.contains(**n)).collect();
                let build = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
                let role_label = format!("role=\"{role}\"");
                if missing.is_empty() && text.contains(&build) && text.contains(&role_label) {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?} or the build labels"))
                }
            }
        })
        .await;
    }

    // Redis stops: alive, not ready, and the failing check is named.
    let redis_port = redis.port;
    redis.stop();
    wait_ready(&roles, |_| (503, Some("redis"))).await;
    assert!(!probe(&format!("{}/ready", roles[2].metrics)));
    assert!(probe(&format!("{}/health", roles[2].metrics)));
    redis = RedisServer::start(dir.path().join("redis"), redis_port).await;
    wait_ready(&roles, |_| (200, None)).await;

    // ClickHouse goes: only the ingester and the api depend on it.
    clickhouse.kill();
    wait_ready(&roles, |role| match role {
        "ingester" | "api" => (503, Some("clickhouse")),
        _ => (200, None),
    })
    .await;
    drop(redis);
}
