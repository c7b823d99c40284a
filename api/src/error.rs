//! The one place that turns failures into HTTP answers: a JSON body for every error, the message
//! for client errors, a generic text for server errors (the cause is logged here, once).
//!
//! Errors are `Clone` so the response cache can hand one computation's failure to every request
//! that waited on it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dvmdash_core::dto::ErrorBody;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing, malformed or out of range.
    #[error("{message}")]
    BadParameter { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Past the per-address rate limit; the client may retry after this many seconds.
    #[error("too many requests from this address")]
    TooManyRequests { retry_after_secs: u64 },
    /// A backend did not answer; `error` is logged, never sent (it may name hosts or credentials).
    #[error("{backend} unavailable: {error}")]
    Unavailable { backend: Backend, error: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// The error answers every statistics endpoint can give, for the OpenAPI document (the bodies are
/// built by [`ApiError`]'s `IntoResponse`).
#[derive(utoipa::IntoResponses)]
pub enum StatsErrors {
    /// A bad parameter, named in the body
    #[response(status = 400)]
    BadParameter(ErrorBody),
    /// Past the per-address rate limit; `Retry-After` and `retry_after_seconds` say when to retry
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    TooManyRequests(ErrorBody),
    /// ClickHouse unavailable
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Which backend an [`ApiError::Unavailable`] is about: the answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    ClickHouse,
    Redis,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::ClickHouse => "clickhouse",
            Backend::Redis => "redis",
        })
    }
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(err: clickhouse::error::Error) -> Self {
        ApiError::Unavailable {
            backend: Backend::ClickHouse,
            error: err.to_string(),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(err: redis::RedisError) -> Self {
        ApiError::Unavailable {
            backend: Backend::Redis,
            error: err.to_string(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(format!("{err:#}"))
    }
}

impl ApiError {
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::BadParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, parameter) = match &self {
            ApiError::BadParameter { parameter, message } => (message.clone(), Some(parameter.clone())),
            ApiError::NotFound(m) | ApiError::Unauthorized(m) => (m.clone(), None),
            ApiError::TooManyRequests { .. } => (self.to_string(), None),
            ApiError::Unavailable { backend, error } => {
                tracing::warn!(%backend, error = %error, "query failed");
                let what = match backend {
                    Backend::Redis => "Redis is temporarily unavailable",
                    Backend::ClickHouse => "statistics are temporarily unavailable",
                };
                (what.to_owned(), None)
            }
            ApiError::Internal(err) => {
                tracing::error!(error = %err, "request failed");
                ("internal error".to_owned(), None)
            }
        };
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let body = ErrorBody {
            detail: message.clone(),
            error: message,
            parameter,
            retry_after_seconds: retry_after,
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn too_many_requests_says_when_to_retry() {
        let resp = ApiError::TooManyRequests { retry_after_secs: 3 }.into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "3");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.expect("body");
        let body: ErrorBody = serde_json::from_slice(&body).expect("json");
        assert_eq!(body.error, "too many requests from this address");
        assert_eq!(body.retry_after_seconds, Some(3));
        let other = ApiError::NotFound("x".into()).into_response();
        assert!(other.headers().get(axum::http::header::RETRY_AFTER).is_none());
    }

    /// The answer names the backend from the error's type and never carries the error's text,
    /// which can name hosts or credentials.
    #[tokio::test]
    async fn an_unavailable_backend_is_named_and_its_error_stays_in_the_log() {
        let io = std::io::Error::other("connect to redis://:hunter2@cache.internal:6379 refused");
        for (err, want) in [
            (
                ApiError::from(redis::RedisError::from(io)),
                "Redis is temporarily unavailable",
            ),
            (
                ApiError::from(clickhouse::error::Error::Custom(
                    "http://default:hunter2@ch.internal:8123 refused".into(),
                )),
                "statistics are temporarily unavailable",
            ),
        ] {
            let resp = err.into_response();
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            let body = axum::body::to_bytes(resp.into_body(), 4096).await.expect("body");
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("hunter2") && !text.contains("internal"), "{text}");
            let body: ErrorBody = serde_json::from_slice(&body).expect("json");
            assert_eq!(body.error, want);
        }
    }
}
