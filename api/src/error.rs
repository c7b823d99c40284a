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
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(err: clickhouse::error::Error) -> Self {
        ApiError::Unavailable(err.to_string())
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(err: redis::RedisError) -> Self {
        ApiError::Unavailable(format!("redis: {err}"))
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
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            ApiError::Unavailable(err) => {
                tracing::warn!(error = %err, "query failed");
                ("statistics are temporarily unavailable".to_owned(), None)
            }
            ApiError::Internal(err) => {
                tracing::error!(error = %err, "request failed");
                ("internal error".to_owned(), None)
            }
        };
        let body = ErrorBody {
            detail: message.clone(),
            error: message,
            parameter,
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
