//! The one error type at the HTTP boundary and its JSON envelope.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_api_types::{ApiErrorBody, ErrorCode, FieldError};
use gantry_core::StoreError;

/// An API error: a stable code, a message, optional per-field details.
#[derive(Debug)]
pub struct ApiError {
    /// Code (decides the status).
    pub code: ErrorCode,
    /// Message for the client.
    pub message: String,
    /// Field problems.
    pub fields: Vec<FieldError>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), fields: Vec::new() }
    }

    /// 422 with field errors.
    pub fn validation(fields: Vec<gantry_core::validate::Invalid>) -> Self {
        let message = match fields.first() {
            Some(f) => format!("invalid `{}`: {}", f.field, f.message),
            None => "invalid input".into(),
        };
        Self {
            code: ErrorCode::ValidationFailed,
            message,
            fields: fields.into_iter().map(|f| FieldError { field: f.field, message: f.message }).collect(),
        }
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "a valid API token is required (Authorization: Bearer <token>)")
    }

    /// 403.
    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, why)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, key } => {
                let code = match kind {
                    "flag" => ErrorCode::FlagNotFound,
                    "segment" => ErrorCode::SegmentNotFound,
                    "environment" => ErrorCode::EnvironmentNotFound,
                    "token" => ErrorCode::TokenNotFound,
                    _ => ErrorCode::NotFound,
                };
                ApiError::new(code, format!("{kind} `{key}` not found"))
            }
            StoreError::AlreadyExists { kind, key } => ApiError::new(ErrorCode::AlreadyExists, format!("{kind} `{key}` already exists")),
            StoreError::VersionMismatch { kind, key, current } => ApiError::new(
                ErrorCode::PreconditionFailed,
                format!("{kind} `{key}` changed: it is at version {current}; fetch it again and retry"),
            ),
            StoreError::Backend(source) => {
                tracing::error!(error = %source, error.source = ?source.source(), "storage failed");
                ApiError::new(ErrorCode::Internal, "internal error; it has been logged")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ApiErrorBody { code: self.code.as_str().to_owned(), message: self.message, fields: self.fields };
        let mut res = (status, axum::Json(body)).into_response();
        if self.code == ErrorCode::Unauthorized {
            res.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
