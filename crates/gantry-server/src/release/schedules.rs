//! Scheduled changes and calendar ramps (`/api/v1/schedules`): timed
//! enable/disable/percentage changes of one flag in one environment, applied
//! by the controller tick through the same write path as the admin API
//! (audited as `release-scheduler`). After downtime, every missed change is
//! audited but only the latest state is applied.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use gantry_api_types::{CreateScheduleRequest, ErrorCode, ScheduleResponse};
use gantry_core::clock::rfc3339;
use gantry_core::validate::{self, Invalid};
use gantry_core::{AuditDraft, Expect, Mutation, ReleaseObject, Store, StoreError};
use gantry_release::schedule::{self, Schedule};
use gantry_release::{Percentage, Timestamp};
use serde::{Deserialize, Serialize};

use super::{commit_with_effects, set_rule_percentage, to_value};
use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json};
use crate::state::AppState;

/// Kind of schedule objects in the store.
pub const SCHEDULE_KIND: &str = "schedule";
/// Audit actor of applied scheduled changes.
pub const SCHEDULER_ACTOR: &str = "release-scheduler";

/// Persisted cursor of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Time of the last change applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<Timestamp>,
}

/// One schedule in memory.
#[derive(Debug, Clone)]
pub struct ScheduleEntry {
    /// The changes.
    pub schedule: Schedule,
    /// Cursor.
    pub state: ScheduleState,
    /// Version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last audited change.
    pub updated_at: DateTime<Utc>,
}

/// Schedules by key.
pub type Schedules = BTreeMap<String, ScheduleEntry>;

impl ScheduleEntry {
    fn response(&self, key: &str, now: Timestamp) -> ScheduleResponse {
        ScheduleResponse {
            key: key.to_owned(),
            schedule: self.schedule.clone(),
            last_applied: self.state.last_applied,
            next_at: schedule::due(&self.schedule, self.state.last_applied, now).next_at,
            version: self.version,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// Loads persisted schedules.
pub async fn load<S: Store>(store: &S) -> Result<Schedules, StoreError> {
    let mut out = Schedules::new();
    for o in store.release_objects(SCHEDULE_KIND).await? {
        let (schedule, state): (Schedule, ScheduleState) = super::decode(o.object.doc, o.object.state)?;
        out.insert(o.object.key, ScheduleEntry { schedule, state, version: o.version, created_at: o.created_at, updated_at: o.updated_at });
    }
    Ok(out)
}

/// Applies every due change (called by the controller tick). Returns how many changes were applied.
pub async fn apply_due<S: Store>(app: &AppState<S>, now: Timestamp) -> usize {
    let mut schedules = app.release.schedules.lock().await;
    let mut applied = 0;
    let keys: Vec<String> = schedules.keys().cloned().collect();
    for key in keys {
        let Some(entry) = schedules.get(&key).cloned() else { continue };
        let d = schedule::due(&entry.schedule, entry.state.last_applied, now);
        if d.changes.is_empty() {
            continue;
        }
        let state = ScheduleState { last_applied: d.last_applied };
        let result = async {
            let object =
                ReleaseObject { kind: SCHEDULE_KIND.into(), key: key.clone(), doc: to_value(&entry.schedule)?, state: to_value(&state)? };
            let audit = d
                .changes
                .iter()
                .map(|c| AuditDraft {
                    actor: SCHEDULER_ACTOR.into(),
                    action: "schedule.applied".into(),
                    target_kind: "schedule".into(),
                    target: key.clone(),
                    before: None,
                    after: serde_json::to_value(c).ok(),
                })
                .collect();
            commit_with_effects(app, SCHEDULER_ACTOR, object, Expect::Version(entry.version), audit, Vec::new(), &d.effects).await
        }
        .await;
        match result {
            Ok((c, _)) => {
                applied += d.changes.len();
                let e = schedules.get_mut(&key).expect("present");
                e.state = state;
                e.version = c.versions.first().copied().unwrap_or(e.version + 1);
                e.updated_at = app.clock.now();
            }
            Err(e) => tracing::warn!(schedule = %key, error = %e.message, "applying a scheduled change failed; retried next tick"),
        }
    }
    applied
}

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/schedules", get(list_schedules::<St>).post(create_schedule::<St>))
        .route("/api/v1/schedules/{key}", get(get_schedule::<St>).delete(delete_schedule::<St>))
}

fn not_found(key: &str) -> ApiError {
    ApiError::new(ErrorCode::ScheduleNotFound, format!("no schedule `{key}`"))
}

/// Lists schedules.
async fn list_schedules<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<ScheduleResponse>>> {
    let now = super::now_of(&app);
    let s = app.release.schedules.lock().await;
    Ok(Json(s.iter().map(|(k, e)| e.response(k, now)).collect()))
}

/// Reads a schedule (ETag).
async fn get_schedule<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal, Path(key): Path<String>) -> ApiResult<Response> {
    let now = super::now_of(&app);
    let s = app.release.schedules.lock().await;
    let e = s.get(&key).ok_or_else(|| not_found(&key))?;
    Ok(with_etag(StatusCode::OK, e.version, e.response(&key, now)))
}

/// Creates a schedule of timed changes or a calendar ramp.
async fn create_schedule<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(req): Json<CreateScheduleRequest>,
) -> ApiResult<Response> {
    let mut problems = Vec::new();
    if let Err(m) = validate::flag_key(&req.key) {
        problems.push(Invalid::new("key", m));
    }
    let sched = match (req.changes.is_empty(), req.ramp.is_empty()) {
        (false, true) => Ok(Schedule { target: req.target.clone(), changes: req.changes }),
        (true, false) => {
            let steps: Vec<(Timestamp, Percentage)> = req.ramp.iter().map(|r| (r.at, r.percentage)).collect();
            Schedule::calendar_ramp(req.target.clone(), &steps)
        }
        _ => {
            return Err(ApiError::validation(vec![Invalid::new("changes", "give either `changes` or `ramp`, not both or neither")]));
        }
    };
    let sched = match sched.and_then(|s| s.validate().map(|()| s)) {
        Ok(s) => s,
        Err(e) => return Err(ApiError::validation(vec![Invalid::new("changes", e.to_string())])),
    };
    {
        let v = app.views();
        let t = &sched.target;
        if v.env(&t.environment).is_none() {
            problems.push(Invalid::new("target.environment", "no such environment"));
        }
        match v.flags.get(&t.flag) {
            None => problems.push(Invalid::new("target.flag", "no such flag")),
            Some(f) => {
                let sets_percentage = sched.changes.iter().any(|c| matches!(c.action, schedule::ScheduledAction::SetPercentage { .. }));
                let mut probe = f.flag.clone();
                if sets_percentage {
                    if let Err(m) = set_rule_percentage(&mut probe, &t.environment, t.rule.as_deref(), Percentage::ZERO) {
                        problems.push(Invalid::new("target.rule", m));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let key = req.key;
    let mut schedules = app.release.schedules.lock().await;
    if schedules.contains_key(&key) {
        return Err(ApiError::new(ErrorCode::AlreadyExists, format!("a schedule `{key}` exists")));
    }
    let state = ScheduleState::default();
    let object = ReleaseObject { kind: SCHEDULE_KIND.into(), key: key.clone(), doc: to_value(&sched)?, state: to_value(&state)? };
    let audit = AuditDraft {
        actor: p.actor(),
        action: "schedule.create".into(),
        target_kind: "schedule".into(),
        target: key.clone(),
        before: None,
        after: serde_json::to_value(&sched).ok(),
    };
    let r = app
        .write(|_| Ok::<_, ApiError>((vec![Mutation::PutReleaseObject { object, expect: Expect::Absent }], vec![audit], vec![])))
        .await?;
    let c = r?;
    let now = app.clock.now();
    let entry = ScheduleEntry { schedule: sched, state, version: c.versions[0], created_at: now, updated_at: now };
    let body = entry.response(&key, super::now_of(&app));
    schedules.insert(key, entry);
    Ok(with_etag(StatusCode::CREATED, body.version, body))
}

/// Deletes a schedule (changes already applied stay).
async fn delete_schedule<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    let mut schedules = app.release.schedules.lock().await;
    let e = schedules.get(&key).ok_or_else(|| not_found(&key))?;
    let before = serde_json::to_value(&e.schedule).ok();
    let r = app
        .write(|_| {
            Ok::<_, ApiError>((
                vec![Mutation::DeleteReleaseObject { kind: SCHEDULE_KIND.into(), key: key.clone(), expect }],
                vec![AuditDraft {
                    actor: p.actor(),
                    action: "schedule.delete".into(),
                    target_kind: "schedule".into(),
                    target: key.clone(),
                    before,
                    after: None,
                }],
                vec![],
            ))
        })
        .await?;
    r?;
    schedules.remove(&key);
    Ok(StatusCode::NO_CONTENT)
}
