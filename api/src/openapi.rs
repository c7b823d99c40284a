//! The OpenAPI document, generated from the handlers' annotations and the DTOs' schemas, served at
//! `/api/openapi.json`.

use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dvmdash API",
        description = "Statistics of Nostr Data Vending Machine (NIP-90) traffic. Definitions of every number: docs/statistics.md. DVMDash's paths and field names are kept.",
    ),
    paths(
        routes::health::health,
        routes::stats::global_latest,
        routes::stats::dvms,
        routes::stats::dvm,
        routes::stats::kinds,
        routes::stats::kind,
        routes::stats::performance,
        routes::stats::reach,
        routes::stats::competition,
        routes::stats::prices,
        routes::stats::whats_new,
        routes::stats::history,
        routes::stats::cache_stats,
    ),
    tags(
        (name = "statistics", description = "DVMDash-compatible counts"),
        (name = "jobs", description = "Request/response linking: latency, outcomes, reach, competition, prices"),
        (name = "meta", description = "Health and cache"),
    )
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let doc = ApiDoc::openapi();
        let json = serde_json::to_value(&doc).unwrap();
        for path in [
            "/health",
            "/api/stats/global/latest",
            "/api/dvms",
            "/api/stats/dvm/{id}",
            "/api/kinds",
            "/api/stats/kind/{kind}",
            "/api/stats/performance",
            "/api/stats/reach",
            "/api/stats/competition",
            "/api/stats/prices",
            "/api/stats/new",
            "/api/history/monthly",
            "/api/cache/stats",
        ] {
            assert!(
                json["paths"][path]["get"].is_object(),
                "{path} missing from the OpenAPI document"
            );
        }
        assert!(json["components"]["schemas"]["GlobalStats"].is_object());
        assert!(json["paths"]["/api/stats/global/latest"]["get"]["parameters"][0]["name"] == "timeRange");
    }
}
