//! Alert rules (`/api/v1/alert-rules`) over the same metrics as guardrails,
//! with Prometheus' states inactive → pending → firing → resolved, evaluated
//! by the controller tick and persisted (audited on every state change).
//! Actions on firing: abort a rollout, flip a kill switch, and the
//! maintenance-mode hook ([`maintenance_mode_hook`]).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gantry_api_types::{AlertRuleRequest, AlertRuleResponse, ErrorCode, GuardrailSource};
use gantry_core::validate::{self, Invalid};
use gantry_core::{AuditDraft, Expect, Mutation, ReleaseObject, Store, StoreError};
use gantry_release::alert::{self, AlertState};
use gantry_release::guardrail::{Measurement, Metric};
use gantry_release::{Effect, Timestamp};

use super::{commit_with_effects, to_value};
use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json};
use crate::state::AppState;

/// Kind of alert-rule objects in the store.
pub const ALERT_KIND: &str = "alert_rule";

/// One rule in memory.
#[derive(Debug, Clone)]
pub struct AlertEntry {
    /// Definition.
    pub def: AlertRuleRequest,
    /// State.
    pub state: AlertState,
    /// Version.
    pub version: i64,
}

/// Rules by name.
pub type Alerts = BTreeMap<String, AlertEntry>;

/// Loads persisted rules.
pub async fn load<S: Store>(store: &S) -> Result<Alerts, StoreError> {
    let mut out = Alerts::new();
    for o in store.release_objects(ALERT_KIND).await? {
        let (def, state): (AlertRuleRequest, AlertState) = super::decode(o.object.doc, o.object.state)?;
        out.insert(o.object.key, AlertEntry { def, state, version: o.version });
    }
    Ok(out)
}

/// The audit actor of a rule's actions.
pub fn actor_of(rule: &str) -> String {
    format!("alert:{rule}")
}

/// The "maintenance mode" alert action: turns the rule's environment's
/// maintenance mode on (or off), keeping its message and allowlist, audited
/// as `alert:<rule>`.
pub async fn maintenance_mode_hook<S: Store>(app: &AppState<S>, env: &str, enabled: bool, rule: &str) {
    if let Err(e) = crate::maintenance::set_maintenance(app, env, enabled, None, &actor_of(rule)).await {
        tracing::warn!(rule, env, enabled, error = %e.message, "alert could not switch maintenance mode");
    }
}

async fn measure<S: Store>(app: &AppState<S>, def: &AlertRuleRequest, now: Timestamp) -> Measurement {
    match &def.source {
        // Alerts watch the rollout arm (everyone, once a flag is fully on).
        GuardrailSource::Events => match app.release.signals.measure(
            &def.target.environment,
            &def.target.flag,
            def.rule.check.metric,
            def.rule.check.window_ms,
            now,
            false,
        ) {
            Measurement::Arms { treatment, .. } => Measurement::Arms { treatment, control: None },
            m => m,
        },
        GuardrailSource::Prometheus { url, query, timeout_ms } => {
            let timeout = timeout_ms.map_or(super::sources::PROMETHEUS_TIMEOUT, std::time::Duration::from_millis);
            super::sources::prometheus_query(&app.release.http, url, query, timeout).await
        }
        GuardrailSource::Probe { .. } => app.release.probes.measurement(&super::sources::alert_probe_key(&def.rule.name)),
    }
}

/// Evaluates every due rule; applies actions of rules that start firing.
/// Returns the firing/resolved alerts for the notifiers.
pub async fn evaluate_due<S: Store>(app: &AppState<S>, now: Timestamp) -> Vec<gantry_release::notify::Alert> {
    let mut alerts = app.release.alerts.lock().await;
    let names: Vec<String> = alerts.keys().cloned().collect();
    let mut follow_ups = Vec::new();
    for name in names {
        let Some(entry) = alerts.get(&name).cloned() else { continue };
        if !entry.state.is_due(&entry.def.rule, now) {
            continue;
        }
        let m = measure(app, &entry.def, now).await;
        let out = alert::evaluate_alert(&entry.def.rule, &entry.state, &m, now);
        let Some(change) = out.change else {
            if out.state != entry.state {
                let saved = match to_value(&out.state) {
                    Ok(v) => app.store.save_release_state(ALERT_KIND, &name, v).await.map_err(ApiError::from),
                    Err(e) => Err(e),
                };
                match saved {
                    Ok(()) => alerts.get_mut(&name).expect("present").state = out.state,
                    Err(e) => tracing::warn!(rule = %name, error = %e.message, "saving alert state failed"),
                }
            }
            continue;
        };
        let actor = actor_of(&name);
        let status = serde_json::to_value(change.to).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let result = async {
            let object =
                ReleaseObject { kind: ALERT_KIND.into(), key: name.clone(), doc: to_value(&entry.def)?, state: to_value(&out.state)? };
            let audit = vec![AuditDraft {
                actor: actor.clone(),
                action: format!("alert.{status}"),
                target_kind: "alert_rule".into(),
                target: name.clone(),
                before: None,
                after: serde_json::to_value(change).ok(),
            }];
            commit_with_effects(app, &actor, object, Expect::Version(entry.version), audit, Vec::new(), &out.effects).await
        }
        .await;
        match result {
            Ok((c, _)) => {
                let e = alerts.get_mut(&name).expect("present");
                e.state = out.state;
                e.version = c.versions.first().copied().unwrap_or(e.version + 1);
                let env = e.def.target.environment.clone();
                follow_ups.extend(out.effects.into_iter().map(|eff| (name.clone(), env.clone(), eff)));
            }
            Err(e) => tracing::warn!(rule = %name, error = %e.message, "recording an alert state change failed; retried next evaluation"),
        }
    }
    let firing: Vec<gantry_release::notify::Alert> = alerts.values().filter_map(|e| alert::to_alert(&e.def.rule, &e.state, None)).collect();
    drop(alerts);
    for (rule, env, effect) in follow_ups {
        match effect {
            Effect::AbortRollout { flag, environment } => {
                if let Err(e) = super::abort_rollout(app, &flag, &environment, &actor_of(&rule), now).await {
                    tracing::warn!(rule, %flag, %environment, error = %e.message, "alert could not abort the rollout");
                }
            }
            Effect::MaintenanceMode { enabled } => maintenance_mode_hook(app, &env, enabled, &rule).await,
            // Kill switches were committed with the state change.
            _ => {}
        }
    }
    firing
}

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/alert-rules", get(list_alert_rules::<St>).post(create_alert_rule::<St>))
        .route("/api/v1/alert-rules/{name}", get(get_alert_rule::<St>).delete(delete_alert_rule::<St>))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(ErrorCode::AlertRuleNotFound, format!("no alert rule `{name}`"))
}

fn response(e: &AlertEntry) -> AlertRuleResponse {
    AlertRuleResponse { definition: e.def.clone(), state: e.state.clone(), version: e.version }
}

/// Lists alert rules with their states.
async fn list_alert_rules<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<AlertRuleResponse>>> {
    Ok(Json(app.release.alerts.lock().await.values().map(response).collect()))
}

/// Reads an alert rule and its state (ETag).
async fn get_alert_rule<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let alerts = app.release.alerts.lock().await;
    let e = alerts.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(with_etag(StatusCode::OK, e.version, response(e)))
}

/// Creates an alert rule.
async fn create_alert_rule<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(def): Json<AlertRuleRequest>,
) -> ApiResult<Response> {
    let mut problems = Vec::new();
    if let Err(m) = validate::flag_key(&def.rule.name) {
        problems.push(Invalid::new("name", m));
    }
    if let Err(e) = def.rule.validate() {
        problems.push(Invalid::new("rule", e.to_string()));
    }
    match &def.source {
        GuardrailSource::Events if def.rule.check.metric == Metric::Scalar => {
            problems.push(Invalid::new("metric", "the events source measures error_rate and arm_value"));
        }
        GuardrailSource::Prometheus { .. } if def.rule.check.metric != Metric::Scalar => {
            problems.push(Invalid::new("metric", "a prometheus source gives a scalar: use metric `scalar`"));
        }
        GuardrailSource::Probe { .. } if def.rule.check.metric != Metric::Scalar => {
            problems.push(Invalid::new("metric", "a probe source gives a scalar (1 unhealthy, 0 healthy): use metric `scalar`"));
        }
        GuardrailSource::Probe { url, .. } | GuardrailSource::Prometheus { url, .. } if reqwest::Url::parse(url).is_err() => {
            problems.push(Invalid::new("source.url", "not a URL"));
        }
        _ => {}
    }
    {
        let v = app.views();
        if v.env(&def.target.environment).is_none() {
            problems.push(Invalid::new("target.environment", "no such environment"));
        }
        for (i, a) in def.rule.actions.iter().enumerate() {
            if let alert::AlertAction::AbortRollout { flag, environment } | alert::AlertAction::KillSwitch { flag, environment } = a {
                if !v.flags.contains_key(flag) || v.env(environment).is_none() {
                    problems.push(Invalid::new(format!("actions[{i}]"), "no such flag or environment"));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let name = def.rule.name.clone();
    let mut alerts = app.release.alerts.lock().await;
    if alerts.contains_key(&name) {
        return Err(ApiError::new(ErrorCode::AlreadyExists, format!("an alert rule `{name}` exists")));
    }
    let state = AlertState::default();
    let object = ReleaseObject { kind: ALERT_KIND.into(), key: name.clone(), doc: to_value(&def)?, state: to_value(&state)? };
    let audit = AuditDraft {
        actor: p.actor(),
        action: "alert_rule.create".into(),
        target_kind: "alert_rule".into(),
        target: name.clone(),
        before: None,
        after: serde_json::to_value(&def).ok(),
    };
    let c = app
        .write(|_| Ok::<_, ApiError>((vec![Mutation::PutReleaseObject { object, expect: Expect::Absent }], vec![audit], vec![])))
        .await??;
    let entry = AlertEntry { def, state, version: c.versions[0] };
    let body = response(&entry);
    alerts.insert(name, entry);
    Ok(with_etag(StatusCode::CREATED, body.version, body))
}

/// Deletes an alert rule (a firing alert disappears without a resolved notice).
async fn delete_alert_rule<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    let mut alerts = app.release.alerts.lock().await;
    let e = alerts.get(&name).ok_or_else(|| not_found(&name))?;
    let before = serde_json::to_value(&e.def).ok();
    let audit = AuditDraft {
        actor: p.actor(),
        action: "alert_rule.delete".into(),
        target_kind: "alert_rule".into(),
        target: name.clone(),
        before,
        after: None,
    };
    app.write(|_| {
        Ok::<_, ApiError>((vec![Mutation::DeleteReleaseObject { kind: ALERT_KIND.into(), key: name.clone(), expect }], vec![audit], vec![]))
    })
    .await??;
    alerts.remove(&name);
    Ok(StatusCode::NO_CONTENT)
}
