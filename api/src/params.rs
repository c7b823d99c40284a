//! Query-string parameters, validated by hand so every error names the offending parameter.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use dvmdash_core::dto::TimeRange;

use crate::error::ApiError;

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

impl Params {
    /// `timeRange`: `1h | 24h | 7d | 30d`, default `30d` (as DVMDash).
    pub fn time_range(&self) -> Result<TimeRange, ApiError> {
        match self.0.get("timeRange") {
            None => Ok(TimeRange::default()),
            Some(v) => TimeRange::parse(v).ok_or_else(|| {
                ApiError::bad(
                    "timeRange",
                    format!(
                        "timeRange must be one of 1h, 24h, 7d, 30d (got {:?})",
                        truncate(v)
                    ),
                )
            }),
        }
    }
}

fn truncate(s: &str) -> &str {
    dvmdash_core::nip90::truncate(s, 40)
}
