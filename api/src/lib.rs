//! dvmdash-api: the public HTTP API and the web UI, computed from ClickHouse.
//!
//! - [`routes`] - handlers (`health`, `stats`)
//! - [`service`] - one answer = its queries in parallel with one `now`, composed and serialized
//! - [`queries`] - the SQL behind each statistic
//! - [`stats`] - pure composition of query rows into answers (docs/statistics.md)
//! - [`cache`] - the response cache: TTL, bounded in bytes, refresh-ahead
//! - [`params`] - query-string validation (every bad parameter is a 400 naming it)
//! - [`error`] - the single mapping from failures to HTTP answers
//! - [`metrics`] - request metrics middleware
//! - [`openapi`] - the OpenAPI document generated from the handlers
//! - [`ui`] - serving the built Sycamore app

pub mod cache;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod queries;
pub mod routes;
pub mod service;
pub mod stats;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use dvmdash_core::config::{ClickHouseArgs, RedisArgs};
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tracing::info;

use crate::queries::jobs::JobTimeouts;

/// Api flags.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "api_config")]
pub struct Config {
    /// Address of the public API and web UI.
    #[arg(long = "api-addr", env = "DVMDASH_API_ADDR", default_value = "127.0.0.1:8000")]
    pub api_addr: SocketAddr,
    /// Directory of the built web UI (index.html, ui.js, ui_bg.wasm).
    #[arg(long = "ui-dir", env = "DVMDASH_UI_DIR", default_value = "ui/dist")]
    pub ui_dir: PathBuf,
    /// How long a computed answer is served from memory, in seconds.
    #[arg(
        long = "cache-ttl-secs",
        env = "DVMDASH_API_CACHE_TTL_SECS",
        default_value_t = 30
    )]
    pub cache_ttl_secs: u64,
    /// Memory the response cache may hold, in megabytes of serialized answers.
    #[arg(long = "cache-mb", env = "DVMDASH_API_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,
    /// Per-kind job timeouts: `5300-5399=300,default=3600`.
    #[arg(
        long = "job-timeouts",
        env = "DVMDASH_JOB_TIMEOUTS",
        default_value = "5300-5399=300,default=3600"
    )]
    pub job_timeouts: JobTimeouts,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            ui_dir: PathBuf::from("ui/dist"),
            cache_ttl_secs: 30,
            cache_mb: 64,
            job_timeouts: JobTimeouts::default(),
        }
    }
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=3600).contains(&self.cache_ttl_secs),
            "cache ttl must be 1..=3600 seconds"
        );
        anyhow::ensure!(
            (1..=16_384).contains(&self.cache_mb),
            "cache size must be 1..=16384 MB"
        );
        Ok(())
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub clickhouse: clickhouse::Client,
    pub redis: redis::Client,
    pub service: service::Service,
    pub cache: Arc<cache::ResponseCache>,
}

impl AppState {
    pub fn new(config: &Config, clickhouse: &ClickHouseArgs, redis: &RedisArgs) -> anyhow::Result<Self> {
        clickhouse.validate().map_err(anyhow::Error::msg)?;
        config.validate()?;
        let ch = clickhouse.client();
        Ok(AppState {
            service: service::Service {
                ch: ch.clone(),
                timeouts: config.job_timeouts.clone(),
            },
            clickhouse: ch,
            redis: redis.client()?,
            cache: Arc::new(cache::ResponseCache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_mb * 1024 * 1024,
            )),
        })
    }
}

/// The whole public surface, for tests to call without a socket.
pub fn router(state: AppState, config: &Config) -> Router {
    use routes::stats;
    let api = Router::new()
        .route("/health", get(routes::health::health))
        .route("/api/stats/global/latest", get(stats::global_latest))
        .route("/api/dvms", get(stats::dvms))
        .route("/api/stats/dvm/{id}", get(stats::dvm))
        .route("/api/kinds", get(stats::kinds))
        .route("/api/stats/kind/{kind}", get(stats::kind))
        .route("/api/stats/performance", get(stats::performance))
        .route("/api/stats/reach", get(stats::reach))
        .route("/api/stats/competition", get(stats::competition))
        .route("/api/stats/prices", get(stats::prices))
        .route("/api/stats/new", get(stats::whats_new))
        .route("/api/history/monthly", get(stats::history))
        .route("/api/cache/stats", get(stats::cache_stats))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/api", axum::routing::any(not_found))
        .with_state(state);
    api.fallback_service(ui::service(&config.ui_dir))
        // A stuck query must not hold a connection (or shutdown) forever.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Outermost, so timed-out requests are counted too.
        .layer(axum::middleware::from_fn(metrics::track))
}

/// Unknown api paths answer JSON, not the web UI's index page.
async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::NotFound(format!(
        "no such endpoint: {}",
        dvmdash_core::nip90::truncate(uri.path(), 200)
    ))
}

/// Serves the api on `listener` until `shutdown`; requests in flight finish first.
pub async fn run(
    config: Config,
    clickhouse: ClickHouseArgs,
    redis: RedisArgs,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    crate::metrics::describe();
    let state = AppState::new(&config, &clickhouse, &redis)?;
    ui::check(&config.ui_dir);
    let addr = listener.local_addr()?;
    info!(%addr, "api listening");
    let refresher = tokio::spawn(state.cache.clone().refresh_loop(shutdown.clone()));
    tokio::spawn(state.cache.clone().watch_version(
        state.redis.clone(),
        redis.names().data_version(),
        shutdown.clone(),
    ));
    tokio::spawn(routes::stats::warm(state.clone()));
    dvmdash_core::telemetry::serve(listener, router(state, &config), shutdown).await?;
    let _ = refresher.await;
    info!("api stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    /// Dependencies that cannot answer: port 1 on loopback refuses connections.
    fn app() -> Router {
        let ch = ClickHouseArgs::new("http://127.0.0.1:1", "dvmdash");
        let redis = RedisArgs {
            redis_url: dvmdash_core::config::Secret::new("redis://127.0.0.1:1"),
            redis_prefix: "t".into(),
        };
        router(
            AppState::new(&Config::default(), &ch, &redis).expect("state"),
            &Config::default(),
        )
    }

    async fn call(uri: &str) -> (StatusCode, serde_json::Value) {
        let resp = app()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn bad_parameters_get_400_naming_them() {
        for uri in [
            "/api/stats/global/latest?timeRange=2h",
            "/api/stats/global/latest?timeRange=",
            "/api/stats/global/latest?timeRange=%FF%FE",
            "/api/stats/global/latest?timeRange=1h%00",
        ] {
            let (status, body) = call(uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["parameter"], "timeRange", "{uri}: {body}");
            assert!(
                body["error"].as_str().is_some_and(|e| e.contains("timeRange")),
                "{body}"
            );
        }
        let long = format!("/api/stats/global/latest?timeRange={}", "x".repeat(20_000));
        let (status, body) = call(&long).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().is_some_and(|e| e.len() < 200),
            "the echo is truncated"
        );
    }

    #[tokio::test]
    async fn unknown_api_paths_are_json_404() {
        let (status, body) = call("/api/nope/../x").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no such endpoint"))
        );
    }

    #[tokio::test]
    async fn health_reports_unreachable_dependencies() {
        let (status, body) = call("/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["database"], "disconnected");
        assert_eq!(body["clickhouse"]["ok"], false);
        assert_eq!(body["redis"]["ok"], false);
        assert!(body["redis"]["error"].as_str().is_some());
    }

    #[tokio::test]
    async fn statistics_without_clickhouse_are_503_json() {
        let (status, body) = call("/api/stats/global/latest?timeRange=1h").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "statistics are temporarily unavailable");
    }
}
