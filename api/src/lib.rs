//! dvmdash-api: the public HTTP API and the web UI, computed from ClickHouse.
//!
//! - [`routes`] - handlers (`health`, `stats`)
//! - [`queries`] - the SQL behind each statistic
//! - [`params`] - query-string validation (every bad parameter is a 400 naming it)
//! - [`error`] - the single mapping from failures to HTTP answers
//! - [`metrics`] - request metrics middleware
//! - [`ui`] - serving the built Sycamore app

pub mod error;
pub mod metrics;
pub mod params;
pub mod queries;
pub mod routes;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use dvmdash_core::config::{ClickHouseArgs, RedisArgs};
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tracing::info;

/// Api flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of the public API and web UI.
    #[arg(long = "api-addr", env = "DVMDASH_API_ADDR", default_value = "127.0.0.1:8000")]
    pub api_addr: SocketAddr,
    /// Directory of the built web UI (index.html, ui.js, ui_bg.wasm).
    #[arg(long = "ui-dir", env = "DVMDASH_UI_DIR", default_value = "ui/dist")]
    pub ui_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            ui_dir: PathBuf::from("ui/dist"),
        }
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub clickhouse: clickhouse::Client,
    pub redis: redis::Client,
}

impl AppState {
    pub fn new(clickhouse: &ClickHouseArgs, redis: &RedisArgs) -> anyhow::Result<Self> {
        clickhouse.validate().map_err(anyhow::Error::msg)?;
        Ok(AppState {
            clickhouse: clickhouse.client(),
            redis: redis.client()?,
        })
    }
}

/// The whole public surface, for tests to call without a socket.
pub fn router(state: AppState, config: &Config) -> Router {
    let api = Router::new()
        .route("/health", get(routes::health::health))
        .route("/api/stats/global/latest", get(routes::stats::global_latest))
        .with_state(state);
    api.fallback_service(ui::service(&config.ui_dir))
        .layer(axum::middleware::from_fn(metrics::track))
        // A stuck query must not hold a connection (or shutdown) forever.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
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
    let state = AppState::new(&clickhouse, &redis)?;
    ui::check(&config.ui_dir);
    let addr = listener.local_addr()?;
    info!(%addr, "api listening");
    dvmdash_core::telemetry::serve(listener, router(state, &config), shutdown).await?;
    info!("api stopped");
    Ok(())
}
