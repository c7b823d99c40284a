//! Statistics endpoints. Each validates its parameters, builds a cache key from the normalized
//! values (so unknown parameters cannot fragment the cache) and answers from the response cache.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::cache::Producer;
use crate::error::{ApiResult, StatsErrors};
use crate::params::{
    self, DirectoryQuery, DvmListQuery, KindListQuery, Params, PerformanceQuery, PricesQuery, Window,
};
use crate::service::{DVM_SORTS, KIND_SORTS, Service};

/// The body for `key` from the cache, computed with `f` on a miss, and how it was served.
pub async fn cached_body<F, Fut>(
    state: &AppState,
    key: String,
    pin: bool,
    f: F,
) -> ApiResult<(Bytes, crate::cache::Served)>
where
    F: Fn(Service) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Bytes>> + Send + 'static,
{
    let service = state.service.clone();
    let f = Arc::new(f);
    let producer: Producer = Arc::new(move || {
        let (service, f) = (service.clone(), f.clone());
        Box::pin(async move { f(service).await })
    });
    state.cache.get(&key, producer, pin).await
}

/// Answers `key` from the cache, computing it with `f` on a miss.
pub async fn cached<F, Fut>(state: &AppState, key: String, pin: bool, f: F) -> ApiResult<Response>
where
    F: Fn(Service) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<Bytes>> + Send + 'static,
{
    let (body, served) = cached_body(state, key, pin, f).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", state.cache.ttl().as_secs()),
            ),
            (
                header::HeaderName::from_static("x-cache"),
                served.as_str().to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/stats/global/latest?timeRange=1h|24h|7d|30d`
#[utoipa::path(get, path = "/api/stats/global/latest", tag = "statistics", params(Window),
    responses((status = 200, body = dvmdash_core::dto::GlobalStats), StatsErrors))]
pub async fn global_latest(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    cached(&state, global_key(range), false, move |s| async move {
        s.global(range).await
    })
    .await
}

// Cache keys shared with the link previews (`crate::ui`), so a preview reuses the answer.
pub fn global_key(range: dvmdash_core::dto::TimeRange) -> String {
    format!("global:{range}")
}
pub fn dvm_key(pk: &dvmdash_core::Id32, range: dvmdash_core::dto::TimeRange) -> String {
    format!("dvm:{}:{range}", hex::encode(pk))
}
pub fn kind_key(kind: u16, range: dvmdash_core::dto::TimeRange) -> String {
    format!("kind:{kind}:{range}")
}

/// `GET /api/dvms`
#[utoipa::path(get, path = "/api/dvms", tag = "statistics", params(DvmListQuery),
    responses((status = 200, body = dvmdash_core::dto::DvmList), StatsErrors))]
pub async fn dvms(State(state): State<AppState>, list: DvmListQuery) -> ApiResult<Response> {
    let q = list.query;
    cached(&state, format!("dvms:{}", q.key()), false, move |s| {
        let q = q.clone();
        async move { s.dvm_list(&q).await }
    })
    .await
}

/// `GET /api/stats/dvm/{id}` (hex or npub)
#[utoipa::path(get, path = "/api/stats/dvm/{id}", tag = "statistics",
    params(("id" = String, Path, description = "Hex pubkey or npub"), Window),
    responses((status = 200, body = dvmdash_core::dto::DvmStats),
        (status = 404, description = "Never seen as a DVM", body = dvmdash_core::dto::ErrorBody), StatsErrors))]
pub async fn dvm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Window { range }: Window,
) -> ApiResult<Response> {
    let pk = params::pubkey(&id)?;
    cached(&state, dvm_key(&pk, range), false, move |s| async move {
        s.dvm(pk, range).await
    })
    .await
}

/// `GET /api/kinds`
#[utoipa::path(get, path = "/api/kinds", tag = "statistics", params(KindListQuery),
    responses((status = 200, body = dvmdash_core::dto::KindList), StatsErrors))]
pub async fn kinds(State(state): State<AppState>, list: KindListQuery) -> ApiResult<Response> {
    let q = list.query;
    cached(&state, format!("kinds:{}", q.key()), false, move |s| {
        let q = q.clone();
        async move { s.kind_list(&q).await }
    })
    .await
}

/// `GET /api/stats/kind/{kind}`
#[utoipa::path(get, path = "/api/stats/kind/{kind}", tag = "statistics",
    params(("kind" = u16, Path, description = "Job request kind"), Window),
    responses((status = 200, body = dvmdash_core::dto::KindStats),
        (status = 404, description = "Never seen", body = dvmdash_core::dto::ErrorBody), StatsErrors))]
pub async fn kind(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Window { range }: Window,
) -> ApiResult<Response> {
    let kind = params::kind(&kind)?;
    cached(&state, kind_key(kind, range), false, move |s| async move {
        s.kind(kind, range).await
    })
    .await
}

/// `GET /api/stats/performance?groupBy=dvm|kind|dvm_kind|all`
#[utoipa::path(get, path = "/api/stats/performance", tag = "jobs", params(PerformanceQuery),
    responses((status = 200, body = dvmdash_core::dto::Performance), StatsErrors))]
pub async fn performance(
    State(state): State<AppState>,
    PerformanceQuery { range, group }: PerformanceQuery,
) -> ApiResult<Response> {
    cached(
        &state,
        format!("performance:{range}:{}", group.as_str()),
        false,
        move |s| async move { s.performance(range, group).await },
    )
    .await
}

/// `GET /api/stats/reach`
#[utoipa::path(get, path = "/api/stats/reach", tag = "jobs", params(Window),
    responses((status = 200, body = dvmdash_core::dto::Reach), StatsErrors))]
pub async fn reach(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    cached(&state, format!("reach:{range}"), false, move |s| async move {
        s.reach(range).await
    })
    .await
}

/// `GET /api/stats/competition`
#[utoipa::path(get, path = "/api/stats/competition", tag = "jobs", params(Window),
    responses((status = 200, body = dvmdash_core::dto::Competition), StatsErrors))]
pub async fn competition(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    cached(
        &state,
        format!("competition:{range}"),
        false,
        move |s| async move { s.competition(range).await },
    )
    .await
}

/// `GET /api/stats/prices?groupBy=dvm|kind`
#[utoipa::path(get, path = "/api/stats/prices", tag = "jobs", params(PricesQuery),
    responses((status = 200, body = dvmdash_core::dto::Prices), StatsErrors))]
pub async fn prices(
    State(state): State<AppState>,
    PricesQuery { range, by_kind }: PricesQuery,
) -> ApiResult<Response> {
    cached(
        &state,
        format!("prices:{range}:{by_kind}"),
        false,
        move |s| async move { s.prices(range, by_kind).await },
    )
    .await
}

/// `GET /api/stats/payments?groupBy=dvm|kind`
#[utoipa::path(get, path = "/api/stats/payments", tag = "jobs", params(PricesQuery),
    responses((status = 200, body = dvmdash_core::dto::Payments), StatsErrors))]
pub async fn payments(
    State(state): State<AppState>,
    PricesQuery { range, by_kind }: PricesQuery,
) -> ApiResult<Response> {
    cached(
        &state,
        format!("payments:{range}:{by_kind}"),
        false,
        move |s| async move { s.payments(range, by_kind).await },
    )
    .await
}

/// `GET /api/relays/status?timeRange=`: live counters, and each relay's counters over the window
/// (default 24h).
#[utoipa::path(get, path = "/api/relays/status", tag = "relays", params(Window),
    responses((status = 200, body = dvmdash_core::dto::RelayHealth),
        (status = 503, description = "Redis is unavailable")))]
pub async fn relay_status(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    let s = state.clone();
    let body = state
        .relay_health
        .try_get_with(range, async move {
            let h = crate::relays::read_health(&s, range).await?;
            serde_json::to_vec(&h)
                .map(Bytes::from)
                .map_err(|e| crate::error::ApiError::Internal(format!("serializing relay health: {e}")))
        })
        .await
        .map_err(|e| (*e).clone())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", crate::RELAY_HEALTH_TTL.as_secs()),
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/contextvm/traffic`
#[utoipa::path(get, path = "/api/contextvm/traffic", tag = "contextvm", params(Window),
    responses((status = 200, body = dvmdash_core::dto::ContextvmTraffic), StatsErrors))]
pub async fn contextvm_traffic(
    State(state): State<AppState>,
    Window { range }: Window,
) -> ApiResult<Response> {
    let since = live_watch_since(&state).await;
    cached(
        &state,
        format!("contextvm:{range}:{}", since.unwrap_or(0)),
        false,
        move |s| async move { s.contextvm_traffic(range, since).await },
    )
    .await
}

/// When collectors began watching the live-only kinds; `None` when unset or Redis cannot say (the
/// answer then says "unknown" rather than failing).
async fn live_watch_since(state: &AppState) -> Option<u64> {
    let mut conn = state.redis_manager().await.ok()?;
    let since: redis::RedisResult<Option<u64>> = redis::cmd("GET")
        .arg(state.names.live_watch_since())
        .query_async(&mut conn)
        .await;
    since
        .inspect_err(|e| tracing::warn!(error = %e, "reading when live watching began failed"))
        .ok()
        .flatten()
}

/// `GET /api/relays/coverage`
#[utoipa::path(get, path = "/api/relays/coverage", tag = "relays", params(Window),
    responses((status = 200, body = dvmdash_core::dto::RelayCoverage), StatsErrors))]
pub async fn relay_coverage(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    cached(
        &state,
        format!("relay-coverage:{range}"),
        false,
        move |s| async move { s.relay_coverage(range).await },
    )
    .await
}

/// `GET /api/dvms/{id}/relays` (hex or npub)
#[utoipa::path(get, path = "/api/dvms/{id}/relays", tag = "relays",
    params(("id" = String, Path, description = "Hex pubkey or npub")),
    responses((status = 200, body = dvmdash_core::dto::DvmRelays),
        (status = 404, description = "Never seen as a service", body = dvmdash_core::dto::ErrorBody), StatsErrors))]
pub async fn dvm_relays(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let pk = params::pubkey(&id)?;
    cached(
        &state,
        format!("dvm-relays:{}", hex::encode(pk)),
        false,
        move |s| async move { s.dvm_relays(pk).await },
    )
    .await
}

/// `GET /api/stats/deviations`
#[utoipa::path(get, path = "/api/stats/deviations", tag = "statistics", params(Window),
    responses((status = 200, body = dvmdash_core::dto::Deviations), StatsErrors))]
pub async fn deviations(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    cached(
        &state,
        format!("deviations:{range}"),
        false,
        move |s| async move { s.deviations(range).await },
    )
    .await
}

/// `GET /api/stats/new`
#[utoipa::path(get, path = "/api/stats/new", tag = "statistics", params(Window),
    responses((status = 200, body = dvmdash_core::dto::WhatsNew), StatsErrors))]
pub async fn whats_new(State(state): State<AppState>, Window { range }: Window) -> ApiResult<Response> {
    cached(&state, format!("new:{range}"), false, move |s| async move {
        s.whats_new(range).await
    })
    .await
}

/// `GET /api/history/monthly`
#[utoipa::path(get, path = "/api/history/monthly", tag = "statistics",
    responses((status = 200, body = dvmdash_core::dto::MonthlyHistory), StatsErrors))]
pub async fn history(State(state): State<AppState>) -> ApiResult<Response> {
    cached(
        &state,
        "history".into(),
        false,
        |s| async move { s.history().await },
    )
    .await
}

/// `GET /api/kinds/usage`
#[utoipa::path(get, path = "/api/kinds/usage", tag = "statistics",
    responses((status = 200, body = dvmdash_core::dto::KindsUsage), StatsErrors))]
pub async fn kinds_usage(State(state): State<AppState>) -> ApiResult<Response> {
    cached(&state, "kinds-usage".into(), false, |s| async move {
        s.kinds_usage().await
    })
    .await
}

/// `GET /api/directory`
#[utoipa::path(get, path = "/api/directory", tag = "services", params(DirectoryQuery),
    responses((status = 200, body = dvmdash_core::dto::Directory), StatsErrors))]
pub async fn directory(State(state): State<AppState>, q: DirectoryQuery) -> ApiResult<Response> {
    cached(&state, format!("directory:{}", q.key()), false, move |s| {
        let q = q.clone();
        async move { s.directory_page(&q).await }
    })
    .await
}

/// `GET /api/liveness/{id}` (hex or npub)
#[utoipa::path(get, path = "/api/liveness/{id}", tag = "services",
    params(("id" = String, Path, description = "Hex pubkey or npub")),
    responses((status = 200, body = dvmdash_core::dto::ServiceLiveness),
        (status = 404, description = "Never seen as a service", body = dvmdash_core::dto::ErrorBody), StatsErrors))]
pub async fn liveness(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let pk = params::pubkey(&id)?;
    cached(
        &state,
        format!("liveness:{}", hex::encode(pk)),
        false,
        move |s| async move { s.liveness(pk).await },
    )
    .await
}

/// `GET /api/cache/stats`
#[utoipa::path(get, path = "/api/cache/stats", tag = "meta",
    responses((status = 200, body = dvmdash_core::dto::CacheStats)))]
pub async fn cache_stats(State(state): State<AppState>) -> axum::Json<dvmdash_core::dto::CacheStats> {
    axum::Json(state.cache.stats().await)
}

/// Computes the answers DVMDash warmed (global, DVM and kind lists for every window) and keeps them
/// refreshed, so the first visitor after a start does not wait.
pub async fn warm(state: AppState) {
    use dvmdash_core::dto::TimeRange;
    for range in TimeRange::ALL {
        let list = Params(std::iter::once(("timeRange".to_owned(), range.as_str().to_owned())).collect());
        let results = [
            cached(&state, format!("global:{range}"), true, move |s| async move {
                s.global(range).await
            })
            .await,
            match list.list(DVM_SORTS) {
                Ok(q) => {
                    cached(&state, format!("dvms:{}", q.key()), true, move |s| {
                        let q = q.clone();
                        async move { s.dvm_list(&q).await }
                    })
                    .await
                }
                Err(e) => Err(e),
            },
            match list.list(KIND_SORTS) {
                Ok(q) => {
                    cached(&state, format!("kinds:{}", q.key()), true, move |s| {
                        let q = q.clone();
                        async move { s.kind_list(&q).await }
                    })
                    .await
                }
                Err(e) => Err(e),
            },
        ];
        for r in results {
            if let Err(err) = r {
                tracing::debug!(error = %err, "warming the cache failed; it will be computed on demand");
            }
        }
    }
}
