//! `GET /health`: whether ClickHouse and Redis answer right now.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dvmdash_core::dto::{DependencyHealth, Health};

use crate::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 with `status: healthy` when both dependencies answer, else 503 with the failing one named.
#[utoipa::path(get, path = "/health", tag = "meta", responses(
    (status = 200, description = "ClickHouse and Redis answer", body = dvmdash_core::dto::Health),
    (status = 503, description = "A dependency does not answer", body = dvmdash_core::dto::Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (clickhouse, redis) = tokio::join!(check_clickhouse(&state), check_redis(&state));
    let healthy = clickhouse.ok && redis.ok;
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" }.into(),
        database: if clickhouse.ok {
            "connected"
        } else {
            "disconnected"
        }
        .into(),
        clickhouse,
        redis,
    };
    (
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

fn outcome(started: Instant, r: Result<anyhow::Result<()>, tokio::time::error::Elapsed>) -> DependencyHealth {
    match r {
        Ok(Ok(())) => DependencyHealth {
            ok: true,
            latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
            error: None,
        },
        Ok(Err(err)) => DependencyHealth {
            ok: false,
            latency_ms: None,
            error: Some(format!("{err:#}")),
        },
        Err(_) => DependencyHealth {
            ok: false,
            latency_ms: None,
            error: Some(format!("no answer within {CHECK_TIMEOUT:?}")),
        },
    }
}

async fn check_clickhouse(state: &AppState) -> DependencyHealth {
    let started = Instant::now();
    let r = tokio::time::timeout(CHECK_TIMEOUT, async {
        dvmdash_core::store::ping(&state.clickhouse).await.map(|_| ())
    })
    .await;
    outcome(started, r)
}

async fn check_redis(state: &AppState) -> DependencyHealth {
    let started = Instant::now();
    let r = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = state.redis.get_multiplexed_async_connection().await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        anyhow::ensure!(pong == "PONG", "unexpected PING reply {pong:?}");
        Ok(())
    })
    .await;
    outcome(started, r)
}
