//! The one place that turns failures into HTTP answers: a JSON body for every error, the message
//! for client errors, a generic text for server errors (the cause is logged once here).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dvmdash_core::dto::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing, malformed or out of range.
    #[error("{message}")]
    BadParameter { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("database unavailable: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
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
            ApiError::ClickHouse(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, parameter) = match &self {
            ApiError::BadParameter { parameter, message } => (message.clone(), Some(parameter.clone())),
            ApiError::NotFound(m) => (m.clone(), None),
            ApiError::ClickHouse(err) => {
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
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
