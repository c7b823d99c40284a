//! Statistics endpoints (DVMDash paths and field names).

use axum::Json;
use axum::extract::State;
use dvmdash_core::dto::GlobalStats;
use dvmdash_core::telemetry::now_secs;

use crate::AppState;
use crate::error::ApiResult;
use crate::params::Params;
use crate::queries;

/// `GET /api/stats/global/latest?timeRange=1h|24h|7d|30d`
pub async fn global_latest(State(state): State<AppState>, params: Params) -> ApiResult<Json<GlobalStats>> {
    let range = params.time_range()?;
    Ok(Json(
        queries::global_stats(&state.clickhouse, range, now_secs()).await?,
    ))
}
