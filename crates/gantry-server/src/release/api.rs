//! Handlers of the rollouts admin API (`/api/v1/rollouts`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gantry_api_types::{CreateRolloutRequest, ErrorCode, GuardrailSource, PromoteRequest, RolloutResponse};
use gantry_core::validate::Invalid;
use gantry_core::{AuditDraft, Expect, Mutation, Store};
use gantry_release::guardrail::Metric;
use gantry_release::rollout::{self, Command, Input, RolloutState, Status};

use super::{now_of, persist, rollout_key, set_rule_percentage, PersistRequest, RolloutDef, ROLLOUT_KIND};
use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json, Principal};
use crate::state::{AppState, Views};

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/rollouts", get(list_rollouts::<St>).post(create_rollout::<St>))
        .route("/api/v1/rollouts/{environment}/{flag}", get(get_rollout::<St>).delete(delete_rollout::<St>))
        .route("/api/v1/rollouts/{environment}/{flag}/promote", post(promote_rollout::<St>))
        .route("/api/v1/rollouts/{environment}/{flag}/pause", post(pause_rollout::<St>))
        .route("/api/v1/rollouts/{environment}/{flag}/resume", post(resume_rollout::<St>))
        .route("/api/v1/rollouts/{environment}/{flag}/abort", post(abort_rollout::<St>))
        .route("/api/v1/rollouts/{environment}/{flag}/retry", post(retry_rollout::<St>))
        .merge(super::schedules::router::<St>())
        .merge(super::alerts::router::<St>())
        .merge(super::notify::router::<St>())
        .merge(super::triggers::router::<St>())
}

fn not_found(key: &str) -> ApiError {
    ApiError::new(ErrorCode::RolloutNotFound, format!("no rollout `{key}`"))
}

fn rejected(e: &gantry_release::ReleaseError) -> ApiError {
    ApiError::new(ErrorCode::InvalidState, e.to_string())
}

fn check_definition(v: &Views, def: &RolloutDef) -> Result<(), ApiError> {
    let plan = &def.plan;
    let mut out = Vec::new();
    if let Err(e) = plan.validate() {
        out.push(Invalid::new("steps", e.to_string()));
    }
    let t = &plan.target;
    if v.env(&t.environment).is_none() {
        out.push(Invalid::new("target.environment", "no such environment"));
    }
    match v.flags.get(&t.flag) {
        None => out.push(Invalid::new("target.flag", "no such flag")),
        Some(f) => {
            let mut probe = f.flag.clone();
            if let Err(m) = set_rule_percentage(&mut probe, &t.environment, t.rule.as_deref(), gantry_release::Percentage::ZERO) {
                out.push(Invalid::new("target.rule", m));
            }
        }
    }
    for name in def.sources.keys() {
        if !plan.guardrails.iter().any(|g| &g.name == name) {
            out.push(Invalid::new(format!("sources.{name}"), "no guardrail of that name"));
        }
    }
    for (i, g) in plan.guardrails.iter().enumerate() {
        match def.sources.get(&g.name) {
            None | Some(GuardrailSource::Events) if g.check.metric == Metric::Scalar => {
                out.push(Invalid::new(format!("guardrails[{i}].metric"), "the events source measures error_rate and arm_value"));
            }
            Some(GuardrailSource::Prometheus { .. } | GuardrailSource::Probe { .. }) if g.check.metric != Metric::Scalar => {
                out.push(Invalid::new(
                    format!("guardrails[{i}].metric"),
                    "prometheus and probe sources give a scalar: use metric `scalar`",
                ));
            }
            Some(GuardrailSource::Prometheus { url, .. } | GuardrailSource::Probe { url, .. }) if reqwest::Url::parse(url).is_err() => {
                out.push(Invalid::new(format!("sources.{}.url", g.name), "not a URL"));
            }
            _ => {}
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(out))
    }
}

/// Lists rollouts.
async fn list_rollouts<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<RolloutResponse>>> {
    let rollouts = app.release.rollouts.lock().await;
    Ok(Json(rollouts.values().map(super::RolloutEntry::response).collect()))
}

/// Reads one rollout, with its version as ETag.
async fn get_rollout<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
) -> ApiResult<Response> {
    let key = rollout_key(&environment, &flag);
    let rollouts = app.release.rollouts.lock().await;
    let e = rollouts.get(&key).ok_or_else(|| not_found(&key))?;
    Ok(with_etag(StatusCode::OK, e.version, e.response()))
}

/// Creates a rollout on a flag in an environment and (unless `start: false`)
/// enters its first step at once.
async fn create_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(req): Json<CreateRolloutRequest>,
) -> ApiResult<Response> {
    let def = RolloutDef { plan: req.plan, sources: req.sources };
    check_definition(&app.views(), &def)?;
    let key = rollout_key(&def.plan.target.environment, &def.plan.target.flag);
    let mut rollouts = app.release.rollouts.lock().await;
    if rollouts.contains_key(&key) {
        return Err(ApiError::new(ErrorCode::AlreadyExists, format!("a rollout `{key}` exists; delete it first")));
    }
    let state = RolloutState::new();
    let now = now_of(&app);
    let outcome = if req.start {
        rollout::step(&def.plan, &state, &Input::Command(Command::Start), now).map_err(|e| rejected(&e))?
    } else {
        rollout::Outcome { state, transitions: Vec::new(), effects: Vec::new(), evaluations: Vec::new() }
    };
    let create = AuditDraft {
        actor: p.actor(),
        action: "rollout.create".into(),
        target_kind: "rollout".into(),
        target: key.clone(),
        before: None,
        after: serde_json::to_value(&def).ok(),
    };
    let actor = p.actor();
    let req = PersistRequest { key: &key, def: &def, before: None, actor: &actor, extra_audit: Some(create) };
    persist(&app, &mut rollouts, req, outcome).await?;
    let e = rollouts.get(&key).ok_or_else(|| ApiError::new(ErrorCode::Internal, "rollout vanished after commit"))?;
    Ok(with_etag(StatusCode::CREATED, e.version, e.response()))
}

/// Deletes a rollout that is not running (abort it first). The flag keeps its
/// current percentage.
async fn delete_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let key = rollout_key(&environment, &flag);
    let expect = if_match(&headers)?;
    let mut rollouts = app.release.rollouts.lock().await;
    let e = rollouts.get(&key).ok_or_else(|| not_found(&key))?;
    if !(e.state.status.is_finished() || e.state.status == Status::Pending) {
        return Err(ApiError::new(ErrorCode::InvalidState, format!("rollout `{key}` is {:?}; abort it first", e.state.status)));
    }
    let before = serde_json::to_value(&e.def).ok();
    let r = app
        .write(|_| {
            Ok::<_, ApiError>((
                vec![Mutation::DeleteReleaseObject { kind: ROLLOUT_KIND.into(), key: key.clone(), expect }],
                vec![AuditDraft {
                    actor: p.actor(),
                    action: "rollout.delete".into(),
                    target_kind: "rollout".into(),
                    target: key.clone(),
                    before,
                    after: None,
                }],
                vec![],
            ))
        })
        .await?;
    r?;
    rollouts.remove(&key);
    app.release.evaluations.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
    Ok(StatusCode::NO_CONTENT)
}

async fn command<St: Store>(
    app: AppState<St>,
    p: Principal,
    environment: String,
    flag: String,
    headers: HeaderMap,
    cmd: Command,
) -> ApiResult<Response> {
    let key = rollout_key(&environment, &flag);
    let expect = if_match(&headers)?;
    let mut rollouts = app.release.rollouts.lock().await;
    let entry = rollouts.get(&key).cloned().ok_or_else(|| not_found(&key))?;
    if let Expect::Version(v) = expect {
        if v != entry.version {
            return Err(ApiError::new(ErrorCode::PreconditionFailed, format!("rollout `{key}` is at version {}, not {v}", entry.version)));
        }
    }
    // `resume` on a rollout created with `start: false` starts it.
    let cmd = if cmd == Command::Resume && entry.state.status == Status::Pending { Command::Start } else { cmd };
    let outcome = rollout::step(&entry.def.plan, &entry.state, &Input::Command(cmd), now_of(&app)).map_err(|e| rejected(&e))?;
    let actor = p.actor();
    let req = PersistRequest { key: &key, def: &entry.def, before: Some(&entry), actor: &actor, extra_audit: None };
    persist(&app, &mut rollouts, req, outcome).await?;
    let e = rollouts.get(&key).ok_or_else(|| not_found(&key))?;
    Ok(with_etag(StatusCode::OK, e.version, e.response()))
}

/// Goes to the next step now (approves, skips a hold, overrides a pause);
/// body `{"full": true}` skips every remaining step.
pub(crate) async fn promote_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: PromoteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PromoteRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))?
    };
    command(app, p, environment, flag, headers, Command::Promote { full: req.full, expected_step: req.expected_step }).await
}

/// Stops automatic progress, keeping the percentage.
pub(crate) async fn pause_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    command(app, p, environment, flag, headers, Command::Pause).await
}

/// Continues after a pause (starts a rollout created with `start: false`).
pub(crate) async fn resume_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    command(app, p, environment, flag, headers, Command::Resume).await
}

/// Stops the rollout and puts the flag back to 0 %.
pub(crate) async fn abort_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    command(app, p, environment, flag, headers, Command::Abort).await
}

/// Starts over from step 0 after a rollback or abort.
pub(crate) async fn retry_rollout<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((environment, flag)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    command(app, p, environment, flag, headers, Command::Retry).await
}
