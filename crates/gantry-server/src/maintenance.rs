//! Maintenance mode per environment: the admin API
//! (`/api/v1/environments/{name}/maintenance`), the public status document
//! (`/api/v1/status`), the synthetic [`MAINTENANCE_FLAG`] the evaluation
//! APIs answer, and [`set_maintenance`] for automation (alert actions).
//!
//! Clients see maintenance in four ways: the native stream (snapshot field
//! and `maintenance-updated` events; the Rust SDK's `is_in_maintenance`),
//! a top-level `maintenance` field of `/api/client/features` (Unleash SDKs
//! ignore it), the flag `gantry.maintenance` in the frontend API and OFREP
//! (on for contexts not on the allowlist, variant `maintenance` with the
//! message as a string payload), and the public status endpoint.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use gantry_api_types::{
    EnvironmentStatus, ErrorCode, Maintenance, MaintenanceResponse, MaintenanceState, StatusDocument, MAINTENANCE_FLAG, MAINTENANCE_VARIANT,
};
use gantry_core::clock::rfc3339;
use gantry_core::validate::Invalid;
use gantry_core::{AuditDraft, Expect, Mutation, Store, StoredMaintenance};
use gantry_engine::{Context, EvalInputs};

use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json};
use crate::state::{AppState, Change, EnvView, Views};

/// Longest maintenance message.
pub const MAX_MESSAGE_CHARS: usize = 1_000;
/// Most allowlist entries (users plus segments).
pub const MAX_ALLOWLIST: usize = 10_000;

/// Routes of maintenance mode and the public status document.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/environments/{name}/maintenance", get(get_maintenance::<St>).put(update_maintenance::<St>))
        .route("/api/v1/status", get(get_status::<St>))
}

/// The settings as SDKs receive them (`ends_at` also in milliseconds).
pub fn state_of(m: &Maintenance) -> MaintenanceState {
    MaintenanceState {
        enabled: m.enabled,
        message: m.message.clone(),
        allow_users: m.allow_users.clone(),
        allow_segments: m.allow_segments.clone(),
        ends_at: m.ends_at.clone(),
        ends_at_ms: m.ends_at.as_deref().and_then(parse_time).map(|t| t.timestamp_millis()),
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

fn response_of(env: &str, stored: Option<&StoredMaintenance>, now_ms: i64) -> MaintenanceResponse {
    match stored {
        Some(s) => MaintenanceResponse {
            environment: env.to_owned(),
            active: state_of(&s.maintenance).active_at(now_ms),
            maintenance: s.maintenance.clone(),
            version: s.version,
            updated_at: Some(rfc3339(s.updated_at)),
        },
        None => MaintenanceResponse {
            environment: env.to_owned(),
            maintenance: Maintenance::default(),
            active: false,
            version: 0,
            updated_at: None,
        },
    }
}

/// Checks and normalises settings: message length, user ids, segments that
/// exist, `ends_at` as RFC 3339 (rewritten in UTC). Duplicates are dropped.
fn validate(v: &Views, mut m: Maintenance) -> Result<Maintenance, ApiError> {
    let mut problems = Vec::new();
    let mut bad = |field: String, message: &str| problems.push(Invalid { field, message: message.into() });
    if let Some(msg) = &m.message {
        if msg.chars().count() > MAX_MESSAGE_CHARS {
            bad("message".into(), "at most 1000 characters");
        }
    }
    if m.allow_users.len() + m.allow_segments.len() > MAX_ALLOWLIST {
        bad("allow_users".into(), "at most 10000 allowlist entries");
    }
    for (i, u) in m.allow_users.iter().enumerate() {
        if u.is_empty() || u.chars().count() > 255 || u.chars().any(char::is_control) {
            bad(format!("allow_users[{i}]"), "a user id has 1 to 255 characters and no control characters");
        }
    }
    for (i, id) in m.allow_segments.iter().enumerate() {
        if !v.segments.contains_key(id) {
            bad(format!("allow_segments[{i}]"), "no segment with this id");
        }
    }
    if let Some(end) = &m.ends_at {
        match parse_time(end) {
            Some(t) => m.ends_at = Some(rfc3339(t)),
            None => bad("ends_at".into(), "must be an RFC 3339 time, e.g. 2030-01-01T12:00:00Z"),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let mut seen = std::collections::HashSet::new();
    m.allow_users.retain(|u| seen.insert(u.clone()));
    let mut seen = std::collections::HashSet::new();
    m.allow_segments.retain(|s| seen.insert(*s));
    Ok(m)
}

fn env_exists(v: &Views, env: &str) -> Result<(), ApiError> {
    if v.env(env).is_none() {
        return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")));
    }
    Ok(())
}

/// Writes settings with their audit entry and publishes them on the stream.
async fn write_maintenance<St: Store>(
    app: &AppState<St>,
    env: &str,
    actor: &str,
    expect: Expect,
    edit: impl FnOnce(Option<&Maintenance>) -> Maintenance,
) -> ApiResult<MaintenanceResponse> {
    let r = app
        .write(|v| {
            env_exists(v, env)?;
            let before = v.maintenance.get(env).map(|m| &m.maintenance);
            // `If-Match: "0"` means "never set": the settings must not exist yet.
            let stale =
                || ApiError::new(ErrorCode::PreconditionFailed, format!("maintenance of `{env}` changed; fetch it again and retry"));
            let expect = match (expect, before.is_some()) {
                (Expect::Version(0), false) => Expect::Absent,
                (Expect::Version(0), true) | (Expect::Version(_) | Expect::Exists, false) => return Err(stale()),
                (e, _) => e,
            };
            let next = validate(v, edit(before))?;
            let action = if next.enabled { "maintenance.on" } else { "maintenance.off" };
            Ok::<_, ApiError>((
                vec![Mutation::PutMaintenance { environment: env.to_owned(), maintenance: next.clone(), expect }],
                vec![AuditDraft {
                    actor: actor.to_owned(),
                    action: action.into(),
                    target_kind: "maintenance".into(),
                    target: env.to_owned(),
                    before: before.and_then(|b| serde_json::to_value(b).ok()),
                    after: serde_json::to_value(&next).ok(),
                }],
                vec![Change::Maintenance { environment: env.to_owned(), state: state_of(&next) }],
            ))
        })
        .await?;
    r.map_err(ApiError::from)?;
    let v = app.views();
    Ok(response_of(env, v.maintenance.get(env), app.clock.now_millis()))
}

/// Switches maintenance mode of `env` on or off, keeping the allowlist; the
/// entry point for automation such as alert actions. `message: None` keeps
/// the current message. Switching on clears `ends_at` (maintenance lasts
/// until switched off). `actor` is written to the audit log (for example
/// `alert:checkout-errors`). Fails with `environment_not_found` for an
/// unknown environment.
pub async fn set_maintenance<St: Store>(
    app: &AppState<St>,
    env: &str,
    on: bool,
    message: Option<String>,
    actor: &str,
) -> Result<MaintenanceResponse, ApiError> {
    write_maintenance(app, env, actor, Expect::Any, |before| {
        let mut m = before.cloned().unwrap_or_default();
        m.enabled = on;
        if message.is_some() {
            m.message = message;
        }
        if on {
            m.ends_at = None;
        }
        m
    })
    .await
}

/// Reads an environment's maintenance settings (ETag = version; `"0"` when never set).
async fn get_maintenance<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    Path(env): Path<String>,
) -> ApiResult<Response> {
    let v = app.views();
    env_exists(&v, &env)?;
    let r = response_of(&env, v.maintenance.get(&env), app.clock.now_millis());
    Ok(with_etag(StatusCode::OK, r.version, r))
}

/// Replaces an environment's maintenance settings. `If-Match` makes it
/// conditional (412 when stale; `"0"` = only if never set). The dashboard
/// calls it too.
pub async fn update_maintenance<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(env): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Maintenance>,
) -> ApiResult<Response> {
    let expect = match headers.get("if-match") {
        Some(_) => if_match(&headers)?,
        None => Expect::Any,
    };
    let r = write_maintenance(&app, &env, &p.actor(), expect, |_| body).await?;
    Ok(with_etag(StatusCode::OK, r.version, r))
}

/// Public status: overall health and, per environment, whether maintenance
/// is in force with its message and end. No token; no allowlists.
async fn get_status<St: Store>(State(app): State<AppState<St>>) -> Response {
    let now = app.clock.now_millis();
    let v = app.views();
    let environments = v
        .environments
        .iter()
        .map(|e| {
            let name = e.environment.name.clone();
            let state = v.maintenance.get(&name).map(|m| state_of(&m.maintenance)).filter(|s| s.active_at(now));
            EnvironmentStatus {
                name,
                maintenance: state.is_some(),
                message: state.as_ref().and_then(|s| s.message.clone()),
                ends_at: state.and_then(|s| s.ends_at),
            }
        })
        .collect();
    let down = *app.shutdown.borrow();
    let body =
        StatusDocument { status: if down { "fail" } else { "pass" }.into(), version: env!("CARGO_PKG_VERSION").into(), environments };
    let status = if down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-cache"));
    r
}

// === the synthetic flag ===

/// Whether `ctx` is in maintenance in this view now; `None` when maintenance
/// was never set for the environment.
pub fn in_maintenance(view: &EnvView, ctx: &Context, inputs: EvalInputs) -> Option<bool> {
    view.maintenance.as_ref().map(|m| m.applies_to(ctx, inputs))
}

/// The message of the view's maintenance.
fn message(view: &EnvView) -> &str {
    view.maintenance.as_ref().and_then(|m| m.state.message.as_deref()).unwrap_or("")
}

/// The frontend-API toggle of [`MAINTENANCE_FLAG`] when `ctx` is in maintenance.
pub fn frontend_toggle(view: &EnvView, ctx: &Context, inputs: EvalInputs) -> Option<serde_json::Value> {
    if in_maintenance(view, ctx, inputs) != Some(true) {
        return None;
    }
    Some(serde_json::json!({
        "name": MAINTENANCE_FLAG,
        "enabled": true,
        "impressionData": false,
        "impression_data": false,
        "variant": {
            "name": MAINTENANCE_VARIANT,
            "enabled": true,
            "feature_enabled": true,
            "featureEnabled": true,
            "payload": {"type": "string", "value": message(view)},
        },
    }))
}

/// The OFREP evaluation of [`MAINTENANCE_FLAG`] (a boolean flag; always
/// answerable, `false` with reason `DISABLED` when maintenance is off).
pub fn ofrep_object(view: &EnvView, ctx: &Context, inputs: EvalInputs) -> serde_json::Value {
    if in_maintenance(view, ctx, inputs) == Some(true) {
        serde_json::json!({
            "key": MAINTENANCE_FLAG,
            "reason": "TARGETING_MATCH",
            "variant": MAINTENANCE_VARIANT,
            "value": true,
            "metadata": {"payloadType": "string", "payload": message(view)},
        })
    } else {
        let reason =
            if view.maintenance.as_ref().is_some_and(|m| m.state.active_at(inputs.now_millis)) { "TARGETING_MATCH" } else { "DISABLED" };
        serde_json::json!({"key": MAINTENANCE_FLAG, "reason": reason, "variant": "off", "value": false, "metadata": {}})
    }
}
