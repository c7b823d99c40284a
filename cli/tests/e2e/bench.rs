//! `dvmdash bench` end to end at a tiny size, against the test services: every benchmark runs, its
//! roles as their own processes, and the replay of every ingest round changes no statistic. The
//! figures themselves are not judged here (timing on a shared machine proves nothing); that the
//! benchmark works, and what it checks, is.

use dvmdash_testkit::env::{clickhouse_url, redis_url};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_runs_and_a_replay_changes_no_statistic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dvmdash"))
        .args([
            "bench",
            "--only",
            "verify,collect,ingest,import,api,replay,fresh",
            "--round",
            "3000",
            "--rounds",
            "2",
            "--collect-events",
            "3000",
            "--import-events",
            "3000",
            "--api-seconds",
            "1",
            "--fresh-probes",
            "2",
            "--fresh-background",
            "50",
            "--json",
        ])
        .arg(&json)
        .env("REDIS_URL", redis_url())
        .env("CLICKHOUSE_URL", clickhouse_url())
        .env("DVMDASH_METRICS_ADDR", "")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run dvmdash bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dvmdash bench failed: {stderr}");
    let results: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON results")).expect("results are JSON");
    let lines = results["lines"].as_array().expect("lines");
    let value = |bench: &str, measure: &str| -> f64 {
        lines
            .iter()
            .find(|l| l["bench"] == bench && l["measure"].as_str().is_some_and(|m| m.contains(measure)))
            .and_then(|l| l["value"].as_f64())
            .unwrap_or_else(|| panic!("no {bench} line measuring {measure:?} in {lines:?}"))
    };
    for bench in [
        "verify", "collect", "ingest", "import", "api", "replay", "roles", "fresh",
    ] {
        assert!(
            lines.iter().any(|l| l["bench"] == bench),
            "no {bench} results in {lines:?}"
        );
    }
    assert_eq!(value("replay", "statistics changed"), 0.0);
    assert!(value("replay", "events sent again") > 0.0);
    assert!(value("collect", "per CPU second") > 0.0);
    assert!(value("ingest", "table at 6000 events") > 0.0);
    // Peak memory is read from each role's own process: real, and not the benchmark's.
    for (bench, role) in [
        ("roles", "ingester 0"),
        ("ingest", "api process"),
        ("import", "import process"),
        ("collect", "collector process"),
        ("collect", "coordinator process"),
    ] {
        let mb = value(bench, &format!("{role}: peak resident memory"));
        assert!((1.0..2000.0).contains(&mb), "{role}: {mb} MB");
    }
}
