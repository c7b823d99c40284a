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
        routes::stats::payments,
        routes::stats::whats_new,
        routes::stats::deviations,
        routes::stats::history,
        routes::stats::directory,
        routes::stats::liveness,
        routes::stats::relay_coverage,
        routes::stats::contextvm_traffic,
        routes::stats::relay_status,
        routes::admin::list_relays,
        routes::admin::add_relay,
        routes::admin::set_priority,
        routes::admin::remove_relay,
        routes::admin::collectors,
        routes::admin::status,
        routes::admin::audit_log,
        routes::admin::pipeline::stream,
        routes::admin::pipeline::dead_letters,
        routes::admin::pipeline::replay,
        routes::admin::pipeline::discard,
        routes::admin::storage::clickhouse,
        routes::stats::dvm_relays,
        routes::stats::kinds_usage,
        routes::stats::cache_stats,
    ),
    tags(
        (name = "statistics", description = "DVMDash-compatible counts"),
        (name = "jobs", description = "Request/response linking: latency, outcomes, reach, competition, prices"),
        (name = "services", description = "DVM-like services of every announcement family and their liveness"),
        (name = "contextvm", description = "ContextVM (MCP over Nostr) calls and responses, watched live"),
        (name = "relays", description = "Which watched relays carry the traffic, and where each DVM can be reached"),
        (name = "meta", description = "Health and cache"),
        (name = "admin", description = "The relay registry, collectors, the stream and its dead letters, ClickHouse table health; bearer token `DVMDASH_ADMIN_TOKEN`; never cached (`Cache-Control: no-store`)"),
    ),
    modifiers(&AdminToken)
)]
pub struct ApiDoc;

/// The `admin_token` security scheme the admin endpoints require: `Authorization: Bearer <token>`.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the value of DVMDASH_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

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
            "/api/stats/payments",
            "/api/stats/new",
            "/api/stats/deviations",
            "/api/history/monthly",
            "/api/directory",
            "/api/liveness/{id}",
            "/api/relays/coverage",
            "/api/contextvm/traffic",
            "/api/relays/status",
            "/api/admin/relays",
            "/api/admin/collectors",
            "/api/admin/status",
            "/api/admin/audit",
            "/api/admin/stream",
            "/api/admin/dead-letters",
            "/api/admin/clickhouse",
            "/api/dvms/{id}/relays",
            "/api/kinds/usage",
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

    /// The documented choices are the ones the handlers accept: both come from the same constants.
    #[test]
    fn documented_parameters_match_the_validation() {
        let json = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let enum_of = |path: &str, name: &str| -> Vec<String> {
            let params = json["paths"][path]["get"]["parameters"].as_array().expect(path);
            let p = params.iter().find(|p| p["name"] == name).expect(name);
            serde_json::from_value(p["schema"]["enum"].clone()).expect("enum")
        };
        let ranges: Vec<String> = dvmdash_core::dto::TimeRange::ALL
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        for path in ["/api/stats/global/latest", "/api/dvms", "/api/stats/prices"] {
            assert_eq!(enum_of(path, "timeRange"), ranges, "{path}");
        }
        assert_eq!(enum_of("/api/dvms", "sort"), dvmdash_core::dto::DVM_SORTS);
        assert_eq!(enum_of("/api/kinds", "sort"), dvmdash_core::dto::KIND_SORTS);
        assert_eq!(
            enum_of("/api/stats/performance", "groupBy"),
            crate::params::PERFORMANCE_GROUPINGS
        );
        for g in crate::params::PERFORMANCE_GROUPINGS {
            assert!(crate::queries::jobs::Grouping::parse(g).is_some(), "{g}");
        }
        let errors = json["paths"]["/api/dvms"]["get"]["responses"]
            .as_object()
            .unwrap();
        for status in ["200", "400", "429", "503"] {
            assert!(errors.contains_key(status), "{status}");
        }
    }
}
