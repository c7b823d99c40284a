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
pub mod relays;
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
    /// A DVM-like service whose newest result or feedback is at most this old counts as alive in
    /// the directory (a heartbeat within 900 s always does), in seconds.
    #[arg(
        long = "alive-window-secs",
        env = "DVMDASH_API_ALIVE_WINDOW_SECS",
        default_value_t = 3600
    )]
    pub alive_window_secs: u64,
    /// Bearer token of `/api/admin`; the admin api is closed without one.
    #[arg(long = "admin-token", env = "DVMDASH_ADMIN_TOKEN")]
    pub admin_token: Option<dvmdash_core::config::Secret>,
    /// Origins allowed to call the api from browsers (comma-separated, `*` for any); none by default.
    #[arg(long = "cors-origins", env = "DVMDASH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Sustained requests per second allowed per client address (0 disables the limit).
    #[arg(long = "rate-per-sec", env = "DVMDASH_API_RATE_PER_SEC", default_value_t = 50)]
    pub rate_per_sec: u64,
    /// Requests a client may burst above the sustained rate.
    #[arg(long = "rate-burst", env = "DVMDASH_API_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        dvmdash_core::config::clap_defaults()
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
        anyhow::ensure!(
            self.rate_per_sec <= 1_000_000,
            "rate per second must be at most 1000000"
        );
        anyhow::ensure!(self.rate_burst >= 1, "rate burst must be at least 1");
        anyhow::ensure!(
            (300..=86_400).contains(&self.alive_window_secs),
            "the alive window must be 300..=86400 seconds"
        );
        if let Some(t) = &self.admin_token {
            let t = t.expose();
            anyhow::ensure!(
                t.is_empty() || t.len() >= 16,
                "the admin token must be at least 16 characters"
            );
        }
        for o in &self.cors_origins {
            anyhow::ensure!(
                o == "*" || o.starts_with("http://") || o.starts_with("https://"),
                "cors origin {o:?} must be * or start with http:// or https://"
            );
        }
        Ok(())
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub clickhouse: clickhouse::Client,
    pub redis: redis::Client,
    /// Created on first use, then reconnects by itself.
    redis_manager: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    pub names: dvmdash_core::redis_keys::RedisNames,
    /// The configured stream shard count; the count Redis recorded wins (see
    /// [`AppState::event_streams`]).
    pub stream_shards: u16,
    pub service: service::Service,
    pub cache: Arc<cache::ResponseCache>,
    /// `GET /api/relays/status`, read from Redis at most every [`RELAY_HEALTH_TTL`]: health must
    /// be fresher than the statistics cache keeps answers, and is cheap to read.
    pub relay_health: moka::future::Cache<dvmdash_core::dto::TimeRange, axum::body::Bytes>,
    pub admin_token: Option<Arc<str>>,
}

/// How long one reading of relay health is served.
pub const RELAY_HEALTH_TTL: Duration = Duration::from_secs(2);

impl AppState {
    pub fn new(config: &Config, clickhouse: &ClickHouseArgs, redis: &RedisArgs) -> anyhow::Result<Self> {
        clickhouse.validate().map_err(anyhow::Error::msg)?;
        config.validate()?;
        let ch = clickhouse.client();
        Ok(AppState {
            service: service::Service {
                ch: ch.clone(),
                timeouts: config.job_timeouts.clone(),
                alive_window_secs: config.alive_window_secs,
            },
            clickhouse: ch,
            redis: redis.client()?,
            redis_manager: Arc::default(),
            names: redis.names(),
            stream_shards: redis.stream_shards,
            cache: Arc::new(cache::ResponseCache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_mb * 1024 * 1024,
            )),
            relay_health: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(RELAY_HEALTH_TTL)
                .build(),
            admin_token: config
                .admin_token
                .as_ref()
                .map(|t| t.expose())
                .filter(|t| !t.is_empty())
                .map(Arc::from),
        })
    }

    /// The events stream's shards as the pipeline uses them: the count Redis recorded, or the
    /// configured one before any writer or reader recorded it. The api only reads the streams and
    /// the dead letters, so it shows what is there rather than refuse a differing configuration.
    pub async fn event_streams(
        &self,
        conn: &mut redis::aio::ConnectionManager,
    ) -> error::ApiResult<dvmdash_core::stream_shards::EventStreams> {
        use dvmdash_core::stream_shards::EventStreams;
        let recorded = EventStreams::recorded(conn, &self.names).await?;
        Ok(EventStreams::new(
            &self.names,
            recorded.unwrap_or(self.stream_shards),
        ))
    }

    /// The events stream's shards for putting entries back on it (a dead-letter replay): checked
    /// against the recorded count, or recorded, as every writer does, so a replay never lands on
    /// shards no ingester reads.
    pub async fn event_streams_for_writing(
        &self,
        conn: &mut redis::aio::ConnectionManager,
    ) -> error::ApiResult<dvmdash_core::stream_shards::EventStreams> {
        let streams =
            dvmdash_core::stream_shards::EventStreams::open(conn, &self.names, self.stream_shards).await?;
        Ok(streams)
    }

    /// A shared self-reconnecting Redis connection for short commands.
    pub async fn redis_manager(&self) -> error::ApiResult<redis::aio::ConnectionManager> {
        let m = self
            .redis_manager
            .get_or_try_init(|| async {
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(3)))
                    .set_response_timeout(Some(Duration::from_secs(5)));
                self.redis.get_connection_manager_with_config(cfg).await
            })
            .await?;
        Ok(m.clone())
    }
}

/// CORS for the configured origins only; no CORS headers at all by default (same origin).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

type RateLimitLayer = tower_governor::GovernorLayer<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    axum::body::Body,
>;

/// Per-client-address rate limit, answering JSON 429 with `Retry-After` past it.
fn rate_limit(config: &Config) -> Option<RateLimitLayer> {
    if config.rate_per_sec == 0 {
        return None;
    }
    let gc = tower_governor::governor::GovernorConfigBuilder::default()
        .period(Duration::from_nanos(1_000_000_000 / config.rate_per_sec))
        .burst_size(config.rate_burst)
        .finish()?;
    let gc = Arc::new(gc);
    // Forget idle clients so the limiter's memory stays bounded.
    let limiter = gc.limiter().clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            limiter.retain_recent();
        }
    });
    Some(tower_governor::GovernorLayer::new(gc).error_handler(|err| {
        use axum::response::IntoResponse as _;
        match err {
            tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
                error::ApiError::TooManyRequests {
                    retry_after_secs: wait_time,
                }
                .into_response()
            }
            other => error::ApiError::Internal(format!("rate limiter: {other}")).into_response(),
        }
    }))
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
        .route("/api/kinds/usage", get(stats::kinds_usage))
        .route("/api/stats/kind/{kind}", get(stats::kind))
        .route("/api/stats/performance", get(stats::performance))
        .route("/api/stats/reach", get(stats::reach))
        .route("/api/stats/competition", get(stats::competition))
        .route("/api/stats/prices", get(stats::prices))
        .route("/api/stats/payments", get(stats::payments))
        .route("/api/stats/new", get(stats::whats_new))
        .route("/api/stats/deviations", get(stats::deviations))
        .route("/api/history/monthly", get(stats::history))
        .route("/api/directory", get(stats::directory))
        .route("/api/liveness/{id}", get(stats::liveness))
        .route("/api/relays/coverage", get(stats::relay_coverage))
        .route("/api/contextvm/traffic", get(stats::contextvm_traffic))
        .route("/api/relays/status", get(stats::relay_status))
        .route("/api/dvms/{id}/relays", get(stats::dvm_relays))
        .route("/api/cache/stats", get(stats::cache_stats))
        .route("/api/openapi.json", get(openapi::document))
        .merge(routes::admin::router(state.clone()))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/api", axum::routing::any(not_found))
        .with_state(state.clone());
    let mut app = api
        .fallback_service(ui::service(&config.ui_dir, state))
        // A stuck query must not hold a connection (or shutdown) forever.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ));
    if let Some(layer) = rate_limit(config) {
        app = app.layer(layer);
    }
    if let Some(layer) = cors(&config.cors_origins) {
        app = app.layer(layer);
    }
    // Outermost, so rejected and timed-out requests are counted too.
    app.layer(axum::middleware::from_fn(metrics::track))
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
    if state.admin_token.is_none() {
        tracing::info!("admin api disabled (set DVMDASH_ADMIN_TOKEN to enable it)");
    }
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
            stream_shards: 1,
        };
        let config = Config {
            rate_per_sec: 0,
            ..Config::default()
        };
        router(AppState::new(&config, &ch, &redis).expect("state"), &config)
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

    fn admin_app() -> Router {
        let ch = ClickHouseArgs::new("http://127.0.0.1:1", "dvmdash");
        let redis = RedisArgs {
            redis_url: dvmdash_core::config::Secret::new("redis://127.0.0.1:1"),
            redis_prefix: "t".into(),
            stream_shards: 1,
        };
        let config = Config {
            rate_per_sec: 0,
            admin_token: Some(dvmdash_core::config::Secret::new("0123456789abcdef-secret")),
            ..Config::default()
        };
        router(AppState::new(&config, &ch, &redis).expect("state"), &config)
    }

    async fn admin(
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = admin_app()
            .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
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
    async fn admin_requires_the_bearer_token() {
        for (method, uri) in [
            ("GET", "/api/admin/status"),
            ("GET", "/api/admin/relays"),
            ("POST", "/api/admin/relays"),
            ("DELETE", "/api/admin/relays?url=wss://x"),
            ("GET", "/api/admin/stream"),
            ("GET", "/api/admin/clickhouse"),
            ("GET", "/api/admin/dead-letters"),
            ("POST", "/api/admin/dead-letters/replay"),
            ("POST", "/api/admin/dead-letters/discard"),
            ("GET", "/api/admin/audit"),
            ("GET", "/api/admin/collectors"),
            ("PUT", "/api/admin/relays"),
        ] {
            let (status, body) = admin(method, uri, None, "{}").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
            assert!(body["error"].as_str().is_some());
            let (status, _) = admin(method, uri, Some("0123456789abcdef-wrong!"), "{}").await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with a wrong token"
            );
            let (status, _) = admin(method, uri, Some("0123456789abcdef-secre"), "{}").await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "a prefix of the token is not the token"
            );
        }
        // The right token passes authentication; Redis being down is then a 503.
        let (status, _) = admin("GET", "/api/admin/status", Some("0123456789abcdef-secret"), "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        // Without a configured token the admin api is closed.
        let (status, body) = call("/api/admin/status").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("DVMDASH_ADMIN_TOKEN"))
        );
    }

    #[tokio::test]
    async fn admin_rejects_bad_bodies_before_touching_redis() {
        let t = Some("0123456789abcdef-secret");
        for body in [
            "",
            "nope",
            "[]",
            r#"{"url": 5}"#,
            r#"{"url": "http://x"}"#,
            r#"{"url": "wss://a", "extra": 1}"#,
            r#"{"url": "wss://a", "priority": "max"}"#,
            // Credentials never go into the registry (it is shown on the public relays page).
            r#"{"url": "wss://user:secret@relay.example"}"#,
            r#"{"url": "wss://token@relay.example/"}"#,
            r#"{"url": "wss://relay.example/\u0000x"}"#,
            r#"{"url": "wss://relay.example/a\u001bb"}"#,
            r#"{"url": "wss://"}"#,
            r#"{"url": "wss:///path"}"#,
            r#"{"url": "javascript://relay.example"}"#,
            r#"{"url": "wss://rel ay.example"}"#,
        ] {
            let (status, json) = admin("POST", "/api/admin/relays", t, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {json}");
        }
        let long = format!(r#"{{"url": "wss://{}"}}"#, "a".repeat(2000));
        assert_eq!(
            admin("POST", "/api/admin/relays", t, &long).await.0,
            StatusCode::BAD_REQUEST
        );
        let long_path = format!(r#"{{"url": "wss://relay.example/{}"}}"#, "p".repeat(600));
        assert_eq!(
            admin("POST", "/api/admin/relays", t, &long_path).await.0,
            StatusCode::BAD_REQUEST,
            "length-limited"
        );
        // Dead-letter actions name exactly one selection, by valid ids, before Redis is touched.
        for body in [
            "",
            "{}",
            r#"{"all": false}"#,
            r#"{"ids": []}"#,
            r#"{"ids": ["1-0"], "all": true}"#,
            r#"{"ids": ["1-0", "../../etc"]}"#,
            r#"{"ids": ["1-0"], "sql": "DROP"}"#,
            r#"{"reason": ""}"#,
        ] {
            for path in [
                "/api/admin/dead-letters/replay",
                "/api/admin/dead-letters/discard",
            ] {
                let (status, json) = admin("POST", path, t, body).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {json}");
            }
        }
        for query in [
            "limit=0",
            "limit=501",
            "limit=x",
            "after=1-x",
            "after=%2B",
            "reason=",
        ] {
            let (status, json) = admin("GET", &format!("/api/admin/dead-letters?{query}"), t, "").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {json}");
        }
        assert_eq!(
            admin("PUT", "/api/admin/relays", t, r#"{"url": "wss://a"}"#)
                .await
                .0,
            StatusCode::BAD_REQUEST,
            "priority required"
        );
        assert_eq!(
            admin("DELETE", "/api/admin/relays", t, "").await.0,
            StatusCode::BAD_REQUEST,
            "url required"
        );
    }
}
