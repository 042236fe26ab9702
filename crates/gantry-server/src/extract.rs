//! Extractors: JSON bodies that fail with our envelope, and the principal.

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use gantry_api_types::{ErrorCode, TokenKind};
use gantry_core::Store;

use crate::error::ApiError;
use crate::state::AppState;

/// `axum::Json` with rejections in Gantry's error envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(&rej)),
        }
    }
}

/// Maps axum's JSON rejections to our codes.
pub fn json_rejection(rej: &JsonRejection) -> ApiError {
    let code = match rej {
        JsonRejection::JsonDataError(_) => ErrorCode::ValidationFailed,
        JsonRejection::JsonSyntaxError(_) => ErrorCode::InvalidJson,
        JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
        _ if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::InvalidJson,
    };
    ApiError::new(code, rej.body_text())
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id (`env-admin` for `GANTRY_ADMIN_TOKEN`).
    pub token_id: String,
    /// Kind.
    pub kind: TokenKind,
    /// Environment scope (server and client tokens).
    pub environment: Option<String>,
}

impl Principal {
    /// Actor name for the audit log.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }

    /// Requires an admin token.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.kind == TokenKind::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("a {} token may not use the admin API", self.kind.as_str())))
        }
    }

    /// The environment to evaluate in: the token's own, or for admin tokens
    /// the `Gantry-Environment` header.
    pub fn evaluation_environment(&self, parts_env: Option<&str>) -> Result<String, ApiError> {
        match (&self.environment, self.kind) {
            (Some(e), _) => match parts_env {
                Some(asked) if asked != e => Err(ApiError::forbidden(format!("this token is scoped to environment `{e}`"))),
                _ => Ok(e.clone()),
            },
            (None, TokenKind::Admin) => parts_env.map(str::to_owned).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidHeader,
                    "admin tokens name the environment to evaluate in with the Gantry-Environment header",
                )
            }),
            (None, _) => Err(ApiError::forbidden("token has no environment")),
        }
    }
}

/// Reads the secret from `Authorization: Bearer X`, raw `Authorization: X`
/// (Unleash SDKs) or `X-API-Key: X` (OFREP).
pub fn secret_from(parts: &Parts) -> Option<&str> {
    let h = &parts.headers;
    if let Some(v) = h.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let v = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim();
        if !v.is_empty() {
            return Some(v);
        }
    }
    h.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

impl<St: Store> FromRequestParts<AppState<St>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState<St>) -> Result<Self, Self::Rejection> {
        let secret = secret_from(parts).ok_or_else(ApiError::unauthorized)?;
        let (token_id, kind, environment) = app.authenticate(secret).ok_or_else(ApiError::unauthorized)?;
        Ok(Principal { token_id, kind, environment })
    }
}

/// The `Gantry-Environment` header.
pub fn environment_header(parts_headers: &axum::http::HeaderMap) -> Option<&str> {
    parts_headers.get("gantry-environment").and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty())
}

/// The peer address, when the server runs with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0)))
    }
}

/// A principal that must be an admin: rejects with 403 before the request
/// body is read, so a non-admin never learns anything from validation errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal(pub Principal);

impl<St: Store> FromRequestParts<AppState<St>> for AdminPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState<St>) -> Result<Self, Self::Rejection> {
        let p = Principal::from_request_parts(parts, app).await?;
        p.require_admin()?;
        Ok(AdminPrincipal(p))
    }
}
