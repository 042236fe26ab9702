//! Operations endpoints: `/health`, `/ready`, `/metrics`, and the JSON 404.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gantry_api_types::{ErrorCode, Health};
use gantry_core::Store;

use crate::error::ApiError;
use crate::state::AppState;

/// Routes of the operations endpoints.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new().route("/health", get(get_health::<St>)).route("/ready", get(get_ready::<St>)).route("/metrics", get(get_metrics::<St>))
}

fn health(status: StatusCode, text: &str) -> Response {
    let body = Health { status: text.into(), version: env!("CARGO_PKG_VERSION").into() };
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/health+json"));
    r
}

/// Liveness: `pass` while the process serves, `fail` once shutting down.
async fn get_health<St: Store>(State(app): State<AppState<St>>) -> Response {
    if *app.shutdown.borrow() {
        health(StatusCode::SERVICE_UNAVAILABLE, "fail")
    } else {
        health(StatusCode::OK, "pass")
    }
}

/// Readiness: the configuration is loaded and the store answers.
async fn get_ready<St: Store>(State(app): State<AppState<St>>) -> Response {
    if *app.shutdown.borrow() {
        return health(StatusCode::SERVICE_UNAVAILABLE, "fail");
    }
    match app.store.audit_page(None, 1).await {
        Ok(_) => health(StatusCode::OK, "pass"),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            health(StatusCode::SERVICE_UNAVAILABLE, "fail")
        }
    }
}

/// Prometheus metrics.
async fn get_metrics<St: Store>(State(app): State<AppState<St>>) -> Response {
    let evals: Vec<(String, String, u64)> = app.usage.lock().unwrap_or_else(|p| p.into_inner()).totals();
    let views = app.views();
    let text = app.metrics.render(&evals, views.flags.len(), views.revision);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}
