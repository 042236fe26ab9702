//! Inbound triggers (`/api/v1/triggers`): a secret URL an outside monitor
//! can POST to (no token) to switch a flag off or on, or abort a rollout.
//! The secret is shown once and stored as its SHA-256; lookups compare in
//! constant time. Each firing is audited as `trigger:<name>`; deleting the
//! trigger revokes the URL.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use gantry_api_types::{CreateTriggerRequest, CreatedTrigger, ErrorCode, TriggerAction, TriggerResponse};
use gantry_core::validate::Invalid;
use gantry_core::{AuditDraft, Expect, Mutation, ReleaseObject, Store, StoreError};
use gantry_release::{Effect, Timestamp};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{abort_rollout, commit_with_effects, now_of, to_value};
use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json};
use crate::state::AppState;

/// Kind of trigger objects in the store.
pub const TRIGGER_KIND: &str = "trigger";
/// Path prefix of trigger URLs.
pub const HOOK_PATH: &str = "/api/v1/triggers/hook/";

/// The stored definition (the secret only as its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerDef {
    /// Label.
    pub name: String,
    /// Action.
    pub action: TriggerAction,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// Displayable start of the secret.
    pub prefix: String,
}

/// Firing bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TriggerState {
    /// Times fired.
    pub fired: u64,
    /// Last firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Timestamp>,
}

/// One trigger in memory.
#[derive(Debug, Clone)]
pub struct TriggerEntry {
    /// Definition.
    pub def: TriggerDef,
    /// State.
    pub state: TriggerState,
    /// Version.
    pub version: i64,
}

/// Triggers by id.
pub type Triggers = BTreeMap<String, TriggerEntry>;

/// Loads persisted triggers.
pub async fn load<S: Store>(store: &S) -> Result<Triggers, StoreError> {
    let mut out = Triggers::new();
    for o in store.release_objects(TRIGGER_KIND).await? {
        let (def, state): (TriggerDef, TriggerState) = super::decode(o.object.doc, o.object.state)?;
        out.insert(o.object.key, TriggerEntry { def, state, version: o.version });
    }
    Ok(out)
}

fn response(id: &str, e: &TriggerEntry) -> TriggerResponse {
    TriggerResponse {
        id: id.to_owned(),
        name: e.def.name.clone(),
        action: e.def.action.clone(),
        prefix: e.def.prefix.clone(),
        fired: e.state.fired,
        last_fired_at: e.state.last_fired_at,
        version: e.version,
    }
}

fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("gantry-trigger-{body}")
}

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/triggers", get(list_triggers::<St>).post(create_trigger::<St>))
        .route("/api/v1/triggers/{id}", delete(revoke_trigger::<St>))
        .route("/api/v1/triggers/hook/{secret}", post(fire_trigger::<St>))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::TriggerNotFound, "no such trigger (revoked, or a wrong URL)")
}

/// Lists triggers (never their secrets).
async fn list_triggers<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<TriggerResponse>>> {
    Ok(Json(app.release.triggers.lock().await.iter().map(|(k, e)| response(k, e)).collect()))
}

/// Creates a trigger; the answer carries its secret URL path, shown once.
async fn create_trigger<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(req): Json<CreateTriggerRequest>,
) -> ApiResult<Response> {
    let (TriggerAction::DisableFlag { flag, environment }
    | TriggerAction::EnableFlag { flag, environment }
    | TriggerAction::AbortRollout { flag, environment }) = &req.action;
    let mut problems = Vec::new();
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        problems.push(Invalid::new("name", "must be 1 to 100 characters"));
    }
    {
        let v = app.views();
        if !v.flags.contains_key(flag) {
            problems.push(Invalid::new("action.flag", "no such flag"));
        }
        if v.env(environment).is_none() {
            problems.push(Invalid::new("action.environment", "no such environment"));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let secret = new_secret();
    let id = gantry_core::token::new_id();
    let def = TriggerDef {
        name: req.name,
        action: req.action,
        secret_hash: gantry_core::token::hash(&secret),
        prefix: gantry_core::token::prefix(&secret),
    };
    let state = TriggerState::default();
    let object = ReleaseObject { kind: TRIGGER_KIND.into(), key: id.clone(), doc: to_value(&def)?, state: to_value(&state)? };
    let shown = serde_json::json!({"name": def.name, "action": def.action, "prefix": def.prefix});
    let audit = AuditDraft {
        actor: p.actor(),
        action: "trigger.create".into(),
        target_kind: "trigger".into(),
        target: id.clone(),
        before: None,
        after: Some(shown),
    };
    let mut triggers = app.release.triggers.lock().await;
    let c = app
        .write(|_| Ok::<_, ApiError>((vec![Mutation::PutReleaseObject { object, expect: Expect::Absent }], vec![audit], vec![])))
        .await??;
    let entry = TriggerEntry { def, state, version: c.versions[0] };
    let body = CreatedTrigger { trigger: response(&id, &entry), path: format!("{HOOK_PATH}{secret}"), secret };
    triggers.insert(id, entry);
    Ok(with_etag(StatusCode::CREATED, body.trigger.version, body))
}

/// Revokes (deletes) a trigger: its URL stops working.
async fn revoke_trigger<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    let mut triggers = app.release.triggers.lock().await;
    if !triggers.contains_key(&id) {
        return Err(ApiError::new(ErrorCode::TriggerNotFound, format!("no trigger `{id}`")));
    }
    let audit = AuditDraft {
        actor: p.actor(),
        action: "trigger.revoke".into(),
        target_kind: "trigger".into(),
        target: id.clone(),
        before: None,
        after: None,
    };
    app.write(|_| {
        Ok::<_, ApiError>((vec![Mutation::DeleteReleaseObject { kind: TRIGGER_KIND.into(), key: id.clone(), expect }], vec![audit], vec![]))
    })
    .await??;
    triggers.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Fires a trigger (no token: the secret in the path is the credential).
async fn fire_trigger<St: Store>(State(app): State<AppState<St>>, Path(secret): Path<String>) -> ApiResult<Response> {
    let hash = gantry_core::token::hash(&secret);
    let mut triggers = app.release.triggers.lock().await;
    let mut found = None;
    for (id, e) in triggers.iter() {
        // Compare every entry, in constant time each.
        if gantry_core::token::ct_eq(&e.def.secret_hash, &hash) {
            found = Some(id.clone());
        }
    }
    let id = found.ok_or_else(not_found)?;
    let entry = triggers.get(&id).cloned().ok_or_else(not_found)?;
    let actor = format!("trigger:{}", entry.def.name);
    let now = now_of(&app);
    let state = TriggerState { fired: entry.state.fired + 1, last_fired_at: Some(now) };
    let object = ReleaseObject { kind: TRIGGER_KIND.into(), key: id.clone(), doc: to_value(&entry.def)?, state: to_value(&state)? };
    let fired = AuditDraft {
        actor: actor.clone(),
        action: "trigger.fired".into(),
        target_kind: "trigger".into(),
        target: id.clone(),
        before: None,
        after: serde_json::to_value(&entry.def.action).ok(),
    };
    let applied = match &entry.def.action {
        TriggerAction::DisableFlag { flag, environment } | TriggerAction::EnableFlag { flag, environment } => {
            let enabled = matches!(entry.def.action, TriggerAction::EnableFlag { .. });
            let effect = Effect::SetEnabled { flag: flag.clone(), environment: environment.clone(), enabled };
            commit_with_effects(&app, &actor, object, Expect::Version(entry.version), vec![fired], Vec::new(), &[effect]).await?;
            true
        }
        TriggerAction::AbortRollout { flag, environment } => {
            let aborted = abort_rollout(&app, flag, environment, &actor, now).await?;
            commit_with_effects(&app, &actor, object, Expect::Version(entry.version), vec![fired], Vec::new(), &[]).await?;
            aborted
        }
    };
    let e = triggers.get_mut(&id).ok_or_else(not_found)?;
    e.state = state;
    e.version += 1;
    Ok((StatusCode::ACCEPTED, axum::Json(serde_json::json!({"trigger": e.def.name, "action": e.def.action, "applied": applied})))
        .into_response())
}
