//! Query-string and path parameters, validated by hand so every error names the offending parameter.
//! Unknown parameters are ignored (DVMDash clients send extras); known ones must be valid.
//!
//! Handlers extract typed query structs ([`Window`], [`DvmListQuery`], [`KindListQuery`],
//! [`PerformanceQuery`], [`PricesQuery`]); each is validated from [`Params`] and documents itself
//! through `IntoParams`, so the OpenAPI document states exactly what the handler accepts. The
//! parameters are described by hand (not derived) because the allowed values of `timeRange`, `sort`
//! and `groupBy` come from the same constants the validation uses.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use dvmdash_core::dto::{DIRECTORY_FAMILIES, DIRECTORY_SORTS, DVM_SORTS, KIND_SORTS, TimeRange};
use dvmdash_core::event::Id32;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Required, Schema};

use crate::error::ApiError;
use crate::queries::jobs::Grouping;
pub use crate::stats::directory::DirectoryQuery;

/// The raw query string as a map; parse errors (bad percent-encoding) become a 400.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad("query", format!("malformed query string: {e}")))?;
        Ok(Params(map))
    }
}

fn shown(s: &str) -> &str {
    dvmdash_core::nip90::truncate(s, 40)
}

/// How a list is cut: after search and sort, `limit` items from `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListQuery {
    pub range: TimeRange,
    pub limit: u64,
    pub offset: u64,
    /// Lowercased search text.
    pub search: Option<String>,
    pub sort: &'static str,
    pub descending: bool,
}

impl ListQuery {
    /// A stable cache key for the normalized query.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}",
            self.range,
            self.limit,
            self.offset,
            self.search.as_deref().unwrap_or(""),
            self.sort,
            if self.descending { "desc" } else { "asc" }
        )
    }
}

impl Params {
    /// `timeRange`: `1h | 24h | 7d | 30d`, default `30d` (as DVMDash).
    pub fn time_range(&self) -> Result<TimeRange, ApiError> {
        match self.0.get("timeRange") {
            None => Ok(TimeRange::default()),
            Some(v) => TimeRange::parse(v).ok_or_else(|| {
                ApiError::bad(
                    "timeRange",
                    format!("timeRange must be one of 1h, 24h, 7d, 30d (got {:?})", shown(v)),
                )
            }),
        }
    }

    fn integer(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad(
                    name,
                    format!(
                        "{name} must be an integer from {min} to {max} (got {:?})",
                        shown(v)
                    ),
                )),
            },
        }
    }

    fn choice(
        &self,
        name: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ApiError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => allowed
                .iter()
                .find(|a| **a == v.as_str())
                .copied()
                .ok_or_else(|| {
                    ApiError::bad(
                        name,
                        format!(
                            "{name} must be one of {} (got {:?})",
                            allowed.join(", "),
                            shown(v)
                        ),
                    )
                }),
        }
    }

    /// `search`: trimmed and lowercased, at most 200 characters; empty means none.
    fn search(&self) -> Result<Option<String>, ApiError> {
        match self.0.get("search") {
            None => Ok(None),
            Some(s) if s.chars().count() > 200 => {
                Err(ApiError::bad("search", "search must be at most 200 characters"))
            }
            Some(s) => Ok(Some(s.trim().to_lowercase()).filter(|s| !s.is_empty())),
        }
    }

    /// Pagination, search and sort for a list endpoint; `sorts[0]` is the default sort.
    pub fn list(&self, sorts: &[&'static str]) -> Result<ListQuery, ApiError> {
        Ok(ListQuery {
            range: self.time_range()?,
            limit: self.integer("limit", 100, 1, 1000)?,
            offset: self.integer("offset", 0, 0, 1_000_000)?,
            search: self.search()?,
            sort: self.choice("sort", sorts, sorts[0])?,
            descending: self.choice("order", &["desc", "asc"], "desc")? == "desc",
        })
    }

    /// Family filter, pagination, search and sort of the directory.
    pub fn directory(&self) -> Result<DirectoryQuery, ApiError> {
        Ok(DirectoryQuery {
            family: self.choice("family", DIRECTORY_FAMILIES, DIRECTORY_FAMILIES[0])?,
            limit: self.integer("limit", 100, 1, 1000)?,
            offset: self.integer("offset", 0, 0, 1_000_000)?,
            search: self.search()?,
            sort: self.choice("sort", DIRECTORY_SORTS, DIRECTORY_SORTS[0])?,
            descending: self.choice("order", &["desc", "asc"], "desc")? == "desc",
        })
    }

    pub fn grouping(&self, allowed: &[&'static str]) -> Result<Grouping, ApiError> {
        let g = self.choice("groupBy", allowed, allowed[0])?;
        Grouping::parse(g).ok_or_else(|| ApiError::bad("groupBy", "unknown grouping"))
    }
}

// ----- typed query structs

/// `timeRange`: the window every statistic covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub range: TimeRange,
}

/// The query of a list endpoint; `S` names its sort columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams<S> {
    pub query: ListQuery,
    sorts: PhantomData<S>,
}

/// What a list can be sorted by and searched in.
pub trait Sorts: Send + Sync {
    /// The first is the default.
    const SORTS: &'static [&'static str];
    /// What `search` looks in, for the documentation.
    const SEARCHED: &'static str;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvmSorts;
impl Sorts for DvmSorts {
    const SORTS: &'static [&'static str] = DVM_SORTS;
    const SEARCHED: &'static str = "the name, hex pubkey or npub";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSorts;
impl Sorts for KindSorts {
    const SORTS: &'static [&'static str] = KIND_SORTS;
    const SEARCHED: &'static str = "the kind number or its name";
}

/// `GET /api/dvms`
pub type DvmListQuery = ListParams<DvmSorts>;
/// `GET /api/kinds`
pub type KindListQuery = ListParams<KindSorts>;

/// Groupings of `/api/stats/performance`; the first is the default.
pub const PERFORMANCE_GROUPINGS: &[&str] = &["dvm", "kind", "dvm_kind", "all"];
/// Groupings of `/api/stats/prices`; the first is the default.
pub const PRICE_GROUPINGS: &[&str] = &["dvm", "kind"];

/// `timeRange` and `groupBy` of `/api/stats/performance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerformanceQuery {
    pub range: TimeRange,
    pub group: Grouping,
}

/// `timeRange` and `groupBy` (`dvm` or `kind`) of `/api/stats/prices` and `/api/stats/payments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricesQuery {
    pub range: TimeRange,
    pub by_kind: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Window {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let range = Params::from_request_parts(parts, state).await?.time_range()?;
        Ok(Window { range })
    }
}

impl<St: Send + Sync, S: Sorts> FromRequestParts<St> for ListParams<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let query = Params::from_request_parts(parts, state).await?.list(S::SORTS)?;
        Ok(ListParams {
            query,
            sorts: PhantomData,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PerformanceQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = Params::from_request_parts(parts, state).await?;
        Ok(PerformanceQuery {
            range: params.time_range()?,
            group: params.grouping(PERFORMANCE_GROUPINGS)?,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PricesQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = Params::from_request_parts(parts, state).await?;
        Ok(PricesQuery {
            range: params.time_range()?,
            by_kind: params.grouping(PRICE_GROUPINGS)? == Grouping::Kind,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DirectoryQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Params::from_request_parts(parts, state).await?.directory()
    }
}

// ----- their OpenAPI description

/// An optional query parameter.
fn query_param(name: &str, description: String, schema: impl Into<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema.into()))
        .build()
}

/// A string parameter taking one of `values`, the first being the default.
fn choice_param(name: &str, what: &str, values: &[&str]) -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .default(values.first().map(|v| serde_json::json!(v)));
    query_param(
        name,
        format!("{what}: {} (default {})", values.join(", "), values[0]),
        schema,
    )
}

fn time_range_param() -> Parameter {
    let values: Vec<&str> = TimeRange::ALL.iter().map(|r| r.as_str()).collect();
    let mut p = choice_param("timeRange", "Window ending now", &values);
    // The default is the longest window, as in DVMDash, not the first listed.
    let default = TimeRange::default().as_str();
    p.description = Some(format!(
        "Window ending now: {} (default {default})",
        values.join(", ")
    ));
    if let Some(utoipa::openapi::RefOr::T(Schema::Object(o))) = p.schema.as_mut() {
        o.default = Some(serde_json::json!(default));
    }
    p
}

fn integer_param(name: &str, what: &str, min: u64, max: u64, default: u64) -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
        .default(Some(serde_json::json!(default)));
    query_param(
        name,
        format!("{what}: {min} to {max} (default {default})"),
        schema,
    )
}

impl IntoParams for Window {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![time_range_param()]
    }
}

impl<S: Sorts> IntoParams for ListParams<S> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let search = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(200));
        vec![
            time_range_param(),
            integer_param("limit", "Items per page", 1, 1000, 100),
            integer_param("offset", "Items skipped", 0, 1_000_000, 0),
            query_param(
                "search",
                format!(
                    "Case-insensitive substring of {} (at most 200 characters)",
                    S::SEARCHED
                ),
                search,
            ),
            choice_param("sort", "Sort column", S::SORTS),
            choice_param("order", "Sort order", &["desc", "asc"]),
        ]
    }
}

impl IntoParams for DirectoryQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let search = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(200));
        vec![
            choice_param(
                "family",
                "Announced as NIP-89, ContextVM or encrypted DVM, or seen only through its activity",
                DIRECTORY_FAMILIES,
            ),
            integer_param("limit", "Items per page", 1, 1000, 100),
            integer_param("offset", "Items skipped", 0, 1_000_000, 0),
            query_param(
                "search",
                "Case-insensitive substring of the name, about text, tool names, hex pubkey or npub \
                 (at most 200 characters)"
                    .into(),
                search,
            ),
            choice_param("sort", "Sort column", DIRECTORY_SORTS),
            choice_param("order", "Sort order", &["desc", "asc"]),
        ]
    }
}

impl IntoParams for PerformanceQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let group = choice_param(
            "groupBy",
            "One row per DVM, kind, DVM and kind, or all (one row over every job)",
            PERFORMANCE_GROUPINGS,
        );
        vec![time_range_param(), group]
    }
}

impl IntoParams for PricesQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            time_range_param(),
            choice_param("groupBy", "One row per DVM or per kind", PRICE_GROUPINGS),
        ]
    }
}

/// A DVM id in a path: 64 hex characters or an npub.
pub fn pubkey(raw: &str) -> Result<Id32, ApiError> {
    dvmdash_core::nip19::parse_pubkey(raw).ok_or_else(|| {
        ApiError::bad(
            "id",
            format!(
                "id must be a 64-character hex pubkey or an npub (got {:?})",
                shown(raw)
            ),
        )
    })
}

/// A kind in a path.
pub fn kind(raw: &str) -> Result<u16, ApiError> {
    raw.trim().parse::<u16>().map_err(|_| {
        ApiError::bad(
            "kind",
            format!("kind must be an integer from 0 to 65535 (got {:?})", shown(raw)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn list_defaults_and_errors() {
        let q = p(&[]).list(&["last_seen", "name"]).unwrap();
        assert_eq!(
            (q.limit, q.offset, q.sort, q.descending),
            (100, 0, "last_seen", true)
        );
        for (k, v) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "-1"),
            ("offset", "x"),
            ("sort", "id"),
            ("order", "up"),
        ] {
            let err = p(&[(k, v)]).list(&["last_seen"]).unwrap_err();
            assert!(
                matches!(&err, ApiError::BadParameter { parameter, .. } if parameter == k),
                "{k}={v}: {err}"
            );
        }
        let q = p(&[("search", "  Vertex "), ("order", "asc"), ("sort", "name")])
            .list(&["last_seen", "name"])
            .unwrap();
        assert_eq!(
            (q.search.as_deref(), q.descending, q.sort),
            (Some("vertex"), false, "name")
        );
        assert!(p(&[("search", &"x".repeat(201))]).list(&["a"]).is_err());
    }

    #[test]
    fn path_parameters() {
        assert!(pubkey(&"ab".repeat(32)).is_ok());
        assert!(pubkey("npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg").is_ok());
        assert!(pubkey("nope").is_err());
        assert_eq!(kind("5300").unwrap(), 5300);
        assert!(kind("70000").is_err());
        assert!(kind("-1").is_err());
    }
}
