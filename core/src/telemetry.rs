//! Logging and Prometheus metrics setup, shared by every role.
//!
//! One process has one metrics recorder (installed on first use); `dvmdash all` therefore exposes
//! the metrics of every role it runs on one `/metrics` endpoint.

use std::sync::OnceLock;
use std::time::Duration;

use axum::{Router, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Sets up `tracing` once. `RUST_LOG` wins over `default_filter` (e.g. `info`).
pub fn init_tracing(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Logs go to stderr: stdout carries what a command prints for its user (URLs, summaries).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Histogram buckets for latencies in seconds: 0.5 ms .. 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets for batch sizes in events.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0, 100000.0,
];

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Suffix("_events".into()),
                        SIZE_BUCKETS,
                    )
                })
                .expect("static bucket lists should be valid");
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is already global (a test installed its own): keep a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawning a thread at startup should work");
            handle
        })
        .clone()
}

/// `dvmdash_build_info{version, role} 1`: which build each process runs.
pub fn record_build_info(role: &'static str) {
    metrics::describe_gauge!(
        "dvmdash_build_info",
        "1, labelled with the dvmdash version and the command the process runs"
    );
    metrics::gauge!("dvmdash_build_info", "version" => env!("CARGO_PKG_VERSION"), "role" => role).set(1.0);
}

/// `GET /metrics` in the Prometheus text format.
pub fn metrics_router() -> Router {
    let handle = metrics_handle();
    Router::new().route(
        "/metrics",
        get(move || {
            let h = handle.clone();
            async move { h.render() }
        }),
    )
}

/// A service a role cannot work without, checked by `/ready`.
#[derive(Debug, Clone)]
pub enum Dependency {
    Redis(crate::config::RedisArgs),
    ClickHouse(crate::config::ClickHouseArgs),
}

/// How long `/ready` waits for one dependency.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

impl Dependency {
    fn name(&self) -> &'static str {
        match self {
            Dependency::Redis(_) => "redis",
            Dependency::ClickHouse(_) => "clickhouse",
        }
    }

    /// The round trip of one trivial command (`PING`, `SELECT 1`).
    async fn check(&self) -> Result<Duration, String> {
        let probe = async {
            let start = std::time::Instant::now();
            match self {
                Dependency::Redis(args) => {
                    let client = args.client()?;
                    let mut conn = client.get_multiplexed_async_connection().await?;
                    redis::cmd("PING").query_async::<String>(&mut conn).await?;
                }
                Dependency::ClickHouse(args) => {
                    crate::store::ping(&args.client()).await?;
                }
            }
            anyhow::Ok(start.elapsed())
        };
        match tokio::time::timeout(READY_TIMEOUT, probe).await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(crate::nip90::truncate(&format!("{e:#}"), 200).to_owned()),
            Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
        }
    }
}

/// `/health` (liveness: the process answers) and `/ready` (every dependency answers, checked
/// together; 503 with the failures otherwise), for the metrics listener of every role.
pub fn health_router(dependencies: Vec<Dependency>) -> Router {
    let deps = std::sync::Arc::new(dependencies);
    Router::new().route("/health", get(|| async { "ok" })).route(
        "/ready",
        get(move || {
            let deps = deps.clone();
            async move {
                // One after the other: at most two dependencies, each bounded by READY_TIMEOUT.
                let mut results = Vec::with_capacity(deps.len());
                for d in deps.iter() {
                    results.push((d.name(), d.check().await));
                }
                let ready = results.iter().all(|(_, r)| r.is_ok());
                let checks: serde_json::Map<String, serde_json::Value> = results
                    .into_iter()
                    .map(|(name, r)| {
                        let v = match r {
                            Ok(d) => serde_json::json!({ "ok": true, "ms": d.as_secs_f64() * 1000.0 }),
                            Err(e) => serde_json::json!({ "ok": false, "error": e }),
                        };
                        (name.to_owned(), v)
                    })
                    .collect();
                let status = if ready {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                };
                (
                    status,
                    axum::Json(serde_json::json!({ "ready": ready, "checks": checks })),
                )
            }
        }),
    )
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// Current unix time in seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Current unix time in milliseconds.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
