//! `/api/admin`: the relay registry, collectors, the stream and its dead letters ([`pipeline`]) and
//! ClickHouse's table health ([`storage`]), behind `DVMDASH_ADMIN_TOKEN`.
//!
//! Nothing here starts or stops processes (DVMDash's admin could reboot containers): operators
//! change the relay registry, and the coordinator rebalances by itself within a tick. Every answer,
//! refusals included, carries `Cache-Control: no-store`, and none goes through the public cache.

use std::collections::BTreeMap;

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use dvmdash_core::dto::{RelayCounters, RelayEntry, RelayPriority};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::relays::{CollectorView, read_collectors};

pub mod pipeline;
pub mod storage;

/// Checks `Authorization: Bearer <token>` in constant time. Without a configured token the admin
/// api is closed.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return ApiError::Unauthorized("the admin api is disabled: set DVMDASH_ADMIN_TOKEN".into())
            .into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    use subtle::ConstantTimeEq as _;
    if given.len() != expected.len() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return ApiError::Unauthorized("a valid bearer token is required".into()).into_response();
    }
    next.run(req).await
}

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/relays",
            get(list_relays)
                .post(add_relay)
                .put(set_priority)
                .delete(remove_relay),
        )
        .route("/api/admin/collectors", get(collectors))
        .route("/api/admin/status", get(status))
        .route("/api/admin/audit", get(audit_log))
        .route("/api/admin/stream", get(pipeline::stream))
        .route("/api/admin/dead-letters", get(pipeline::dead_letters))
        .route(
            "/api/admin/dead-letters/replay",
            axum::routing::post(pipeline::replay),
        )
        .route(
            "/api/admin/dead-letters/discard",
            axum::routing::post(pipeline::discard),
        )
        .route("/api/admin/clickhouse", get(storage::clickhouse))
        .route_layer(axum::middleware::from_fn_with_state(state, require_token))
        .layer(axum::middleware::map_response(no_store))
}

/// Admin answers describe the live system and may be personal to the operator: never stored by a
/// browser or a proxy.
async fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// The security requirement and refusals shared by every admin endpoint in the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum AdminErrors {
    /// Bad input, with the parameter named.
    #[response(status = 400)]
    BadRequest(dvmdash_core::dto::ErrorBody),
    /// No token, a wrong one, or no token configured (the admin api is then closed).
    #[response(status = 401)]
    Unauthorized(dvmdash_core::dto::ErrorBody),
    /// Redis is unavailable.
    #[response(status = 503)]
    Unavailable(dvmdash_core::dto::ErrorBody),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RelayView {
    pub url: String,
    #[serde(flatten)]
    pub entry: RelayEntry,
    /// Collectors assigned to it.
    pub collectors: Vec<String>,
    /// What each collector reports about it.
    pub metrics: BTreeMap<String, RelayCounters>,
}

/// One audited admin change: who (by token fingerprint), what, when.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// RFC 3339.
    pub at: String,
    /// `token:` and the first 12 hex digits of the token's SHA-256: which credential acted,
    /// without the credential.
    pub actor: String,
    /// `add`, `priority`, `remove` (relays), `replay` or `discard` (dead letters).
    pub action: String,
    /// What it acted on: a relay URL, or which dead letters.
    #[serde(alias = "relay")]
    pub target: String,
    /// What changed, in words.
    pub detail: String,
}

/// Audit entries kept (newest first).
const AUDIT_KEEP: isize = 1000;

/// The fingerprint of a token: never the token itself.
pub fn token_fingerprint(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    format!("token:{}", &hex::encode(digest)[..12])
}

/// Records a change in the log and in the audit list; a Redis failure is logged, not fatal (the
/// change itself is done).
async fn audit(state: &AppState, action: &str, target: &str, detail: String) {
    let entry = AuditEntry {
        at: dvmdash_core::dto::rfc3339(dvmdash_core::telemetry::now_secs()),
        actor: token_fingerprint(state.admin_token.as_deref().unwrap_or_default()),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    tracing::info!(actor = %entry.actor, action, target, detail = %entry.detail, "admin change");
    let Ok(json) = serde_json::to_string(&entry) else {
        return;
    };
    let key = state.names.admin_audit();
    let mut c = match state.redis_manager().await {
        Ok(c) => c,
        Err(err) => {
            tracing::warn!(error = %err, "could not keep the admin change in the audit list");
            return;
        }
    };
    let saved: redis::RedisResult<()> = redis::pipe()
        .cmd("LPUSH")
        .arg(&key)
        .arg(json)
        .ignore()
        .cmd("LTRIM")
        .arg(&key)
        .arg(0)
        .arg(AUDIT_KEEP - 1)
        .ignore()
        .query_async(&mut c)
        .await;
    if let Err(err) = saved {
        tracing::warn!(error = %err, "could not keep the admin change in the audit list");
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Most entries, newest first (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// `GET /api/admin/audit?limit=`
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", security(("admin_token" = [])),
    params(AuditQuery), responses((status = 200, body = Vec<AuditEntry>), AdminErrors))]
pub async fn audit_log(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad("limit", "limit must be 1 to 1000"));
    }
    let mut c = state.redis_manager().await?;
    let raw: Vec<String> = redis::cmd("LRANGE")
        .arg(state.names.admin_audit())
        .arg(0)
        .arg(limit as isize - 1)
        .query_async(&mut c)
        .await?;
    Ok(Json(
        raw.iter().filter_map(|j| serde_json::from_str(j).ok()).collect(),
    ))
}

/// `GET /api/admin/relays`
#[utoipa::path(get, path = "/api/admin/relays", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<RelayView>), AdminErrors))]
pub async fn list_relays(State(state): State<AppState>) -> ApiResult<Json<Vec<RelayView>>> {
    let names = state.names.clone();
    let mut c = state.redis_manager().await?;
    let registry = dvmdash_core::registry::list(&mut c, &names).await?;
    let collectors = read_collectors(&state, &names).await?;
    Ok(Json(
        registry
            .into_iter()
            .map(|(url, entry)| RelayView {
                collectors: collectors
                    .iter()
                    .filter(|c| c.assigned.contains(&url))
                    .map(|c| c.id.clone())
                    .collect(),
                metrics: collectors
                    .iter()
                    .filter_map(|c| Some((c.id.clone(), c.relays.get(&url)?.clone())))
                    .collect(),
                url,
                entry,
            })
            .collect(),
    ))
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayChange {
    pub url: String,
    #[serde(default)]
    pub priority: Option<RelayPriority>,
}

fn relay_url(raw: &str) -> ApiResult<String> {
    if raw.len() > 512 {
        return Err(ApiError::bad("url", "relay url must be at most 512 characters"));
    }
    dvmdash_core::nip90::normalize_relay_url(raw)
        .ok_or_else(|| ApiError::bad("url", "url must be a ws:// or wss:// relay address"))
}

fn body(
    parsed: Result<Json<RelayChange>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<RelayChange> {
    parsed.map(|Json(b)| b).map_err(|e| {
        ApiError::bad(
            "body",
            format!(
                "expected JSON {{\"url\": ..., \"priority\": \"normal\"|\"high\"}}: {}",
                e.body_text()
            ),
        )
    })
}

/// `POST /api/admin/relays` `{url, priority?}`: 201 when added, 200 when it was registered already.
#[utoipa::path(post, path = "/api/admin/relays", tag = "admin", security(("admin_token" = [])),
    request_body = RelayChange,
    responses((status = 201, description = "added: `{url, added: true}`"),
        (status = 200, description = "registered already: `{url, added: false}`"), AdminErrors))]
pub async fn add_relay(
    State(state): State<AppState>,
    parsed: Result<Json<RelayChange>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let change = body(parsed)?;
    let url = relay_url(&change.url)?;
    let mut c = state.redis_manager().await?;
    let added = dvmdash_core::registry::upsert(&mut c, &state.names, &url, change.priority, "admin").await?;
    let detail = match (added, change.priority) {
        (true, p) => format!("added with priority {}", p.unwrap_or_default().as_str()),
        (false, Some(p)) => format!("already registered; priority {}", p.as_str()),
        (false, None) => "already registered".to_owned(),
    };
    audit(&state, "add", &url, detail).await;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(serde_json::json!({ "url": url, "added": added }))).into_response())
}

/// `PUT /api/admin/relays` `{url, priority}`: changes a registered relay's priority.
#[utoipa::path(put, path = "/api/admin/relays", tag = "admin", security(("admin_token" = [])),
    request_body = RelayChange,
    responses((status = 200, description = "`{url, priority}`"),
        (status = 404, description = "the relay is not registered"), AdminErrors))]
pub async fn set_priority(
    State(state): State<AppState>,
    parsed: Result<Json<RelayChange>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let change = body(parsed)?;
    let url = relay_url(&change.url)?;
    let priority = change
        .priority
        .ok_or_else(|| ApiError::bad("priority", "priority must be normal or high"))?;
    let mut c = state.redis_manager().await?;
    let registry = dvmdash_core::registry::list(&mut c, &state.names).await?;
    if !registry.contains_key(&url) {
        return Err(ApiError::NotFound(format!("relay {url} is not registered")));
    }
    dvmdash_core::registry::upsert(&mut c, &state.names, &url, Some(priority), "admin").await?;
    audit(
        &state,
        "priority",
        &url,
        format!("priority set to {}", priority.as_str()),
    )
    .await;
    Ok(Json(serde_json::json!({ "url": url, "priority": priority })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UrlQuery {
    /// The relay's ws:// or wss:// URL.
    pub url: Option<String>,
}

/// `DELETE /api/admin/relays?url=`
#[utoipa::path(delete, path = "/api/admin/relays", tag = "admin", security(("admin_token" = [])),
    params(UrlQuery),
    responses((status = 200, description = "`{url, removed: true}`"),
        (status = 404, description = "the relay is not registered"), AdminErrors))]
pub async fn remove_relay(
    State(state): State<AppState>,
    Query(q): Query<UrlQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let url = relay_url(
        q.url
            .as_deref()
            .ok_or_else(|| ApiError::bad("url", "url is required"))?,
    )?;
    let mut c = state.redis_manager().await?;
    if !dvmdash_core::registry::remove(&mut c, &state.names, &url).await? {
        return Err(ApiError::NotFound(format!("relay {url} is not registered")));
    }
    audit(&state, "remove", &url, "removed".to_owned()).await;
    Ok(Json(serde_json::json!({ "url": url, "removed": true })))
}

/// `GET /api/admin/collectors`
#[utoipa::path(get, path = "/api/admin/collectors", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<CollectorView>), AdminErrors))]
pub async fn collectors(State(state): State<AppState>) -> ApiResult<Json<Vec<CollectorView>>> {
    let names = state.names.clone();
    Ok(Json(read_collectors(&state, &names).await?))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// The events stream, or its first shard when it is split.
    pub stream: String,
    /// How many shards the stream is split into (1: not split).
    pub stream_shards: u16,
    /// Entries, pending entries and undelivered entries over every shard.
    pub stream_length: u64,
    pub pending: u64,
    pub lag: Option<u64>,
    pub dead_letters: u64,
    pub collectors: u64,
    pub relays: u64,
    /// Relays no live collector is assigned.
    pub unwatched_relays: Vec<String>,
    pub coordinator_leader: Option<String>,
    pub data_version: u64,
}

/// `GET /api/admin/status`
#[utoipa::path(get, path = "/api/admin/status", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = Status), AdminErrors))]
pub async fn status(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    let names = state.names.clone();
    let mut c = state.redis_manager().await?;
    let streams = state.event_streams(&mut c).await?;
    let info = streams.group_info(&mut c).await?;
    let dead_letters = streams.dead_letters().dead_letters(&mut c).await?;
    let registry = dvmdash_core::registry::list(&mut c, &names).await?;
    let leader: Option<String> = redis::cmd("GET")
        .arg(names.coordinator_leader())
        .query_async(&mut c)
        .await?;
    let version: Option<u64> = redis::cmd("GET")
        .arg(names.data_version())
        .query_async(&mut c)
        .await?;
    let collectors = read_collectors(&state, &names).await?;
    let watched: std::collections::BTreeSet<&String> =
        collectors.iter().flat_map(|c| c.assigned.iter()).collect();
    Ok(Json(Status {
        stream: streams.all()[0].key().to_owned(),
        stream_shards: streams.count(),
        stream_length: info.length,
        pending: info.pending,
        lag: info.lag,
        dead_letters,
        collectors: collectors.len() as u64,
        relays: registry.len() as u64,
        unwatched_relays: registry
            .keys()
            .filter(|u| !watched.contains(u))
            .cloned()
            .collect(),
        coordinator_leader: leader,
        data_version: version.unwrap_or(0),
    }))
}
