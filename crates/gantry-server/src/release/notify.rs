//! Notifier channels (`/api/v1/notifiers`): a generic webhook carrying
//! Alertmanager's v4 body, or a Slack incoming webhook. Each tick, firing and
//! resolved alerts are grouped per notifier (group wait / interval / repeat,
//! resolved notices); due notifications are POSTed with reqwest by a
//! background task that retries with backoff and honours `429 Retry-After`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gantry_api_types::{ErrorCode, NotifierKind, NotifierRequest, NotifierResponse};
use gantry_core::validate::{self, Invalid};
use gantry_core::{AuditDraft, Expect, Mutation, ReleaseObject, Store, StoreError};
use gantry_release::notify::{self, AttemptResult, NotifyState, RetryDecision};
use gantry_release::Timestamp;

use super::to_value;
use crate::admin::{if_match, with_etag};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json};
use crate::state::AppState;

/// Kind of notifier objects in the store.
pub const NOTIFIER_KIND: &str = "notifier";
/// Timeout of one delivery attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One notifier in memory.
#[derive(Debug, Clone)]
pub struct NotifierEntry {
    /// Definition.
    pub def: NotifierRequest,
    /// Grouping state.
    pub state: NotifyState,
    /// Version.
    pub version: i64,
    /// Delivered since start.
    pub delivered: Arc<AtomicU64>,
    /// Given up since start.
    pub failed: Arc<AtomicU64>,
}

/// Notifiers by key.
pub type Notifiers = BTreeMap<String, NotifierEntry>;

/// Loads persisted notifiers.
pub async fn load<S: Store>(store: &S) -> Result<Notifiers, StoreError> {
    let mut out = Notifiers::new();
    for o in store.release_objects(NOTIFIER_KIND).await? {
        let (def, state): (NotifierRequest, NotifyState) = super::decode(o.object.doc, o.object.state)?;
        out.insert(o.object.key, NotifierEntry { def, state, version: o.version, delivered: Arc::default(), failed: Arc::default() });
    }
    Ok(out)
}

fn seed_of(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Groups `alerts` into every notifier and sends what is due.
pub async fn dispatch<S: Store>(app: &AppState<S>, alerts: &[notify::Alert], now: Timestamp) {
    let mut notifiers = app.release.notifiers.lock().await;
    for (key, n) in notifiers.iter_mut() {
        let before = n.state.clone();
        n.state.ingest(&n.def.policy, alerts, now);
        let due = n.state.flush(&n.def.policy, now);
        if n.state != before {
            if let Ok(v) = to_value(&n.state) {
                if let Err(e) = app.store.save_release_state(NOTIFIER_KIND, key, v).await {
                    tracing::warn!(notifier = %key, error = %e, "saving notifier state failed");
                }
            }
        }
        for notification in due {
            let body = match n.def.kind {
                NotifierKind::Webhook => notify::webhook_payload(&notification, key, "", 0),
                NotifierKind::Slack => notify::slack_payload(&notification, ""),
            };
            let seed = seed_of(&notification.group_key);
            tokio::spawn(deliver(app.clone(), n.clone(), key.clone(), body, seed));
        }
    }
}

/// POSTs one notification until it is delivered or the retry policy gives up.
async fn deliver<S: Store>(app: AppState<S>, n: NotifierEntry, key: String, body: serde_json::Value, seed: u64) {
    let http = reqwest::Client::new();
    let mut attempt = 1;
    loop {
        let r = tokio::time::timeout(ATTEMPT_TIMEOUT, http.post(&n.def.url).json(&body).send()).await;
        let result = match r {
            Err(_) => AttemptResult::Timeout,
            Ok(Err(_)) => AttemptResult::Network,
            Ok(Ok(res)) => AttemptResult::Status {
                code: res.status().as_u16(),
                retry_after: res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned),
            },
        };
        // Real time, not the injected clock: delivery waits are wall-clock waits.
        let now = Timestamp::from_millis(chrono::Utc::now().timestamp_millis());
        match notify::next_attempt(&n.def.retry, attempt, &result, now, seed) {
            RetryDecision::Done => {
                n.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            RetryDecision::GiveUp => {
                n.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(notifier = %key, ?result, attempt, "notification given up");
                return;
            }
            RetryDecision::RetryAt { at } => {
                tracing::info!(notifier = %key, ?result, attempt, "notification failed; retrying");
                let wait = Duration::from_millis(at.since(now));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = crate::state::stopped(app.shutdown.clone()) => return,
                }
                attempt += 1;
            }
        }
    }
}

/// Routes.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/notifiers", get(list_notifiers::<St>).post(create_notifier::<St>))
        .route("/api/v1/notifiers/{key}", get(get_notifier::<St>).delete(delete_notifier::<St>))
}

fn not_found(key: &str) -> ApiError {
    ApiError::new(ErrorCode::NotifierNotFound, format!("no notifier `{key}`"))
}

/// Scheme, host and port of a URL: never its user info, path or query
/// (webhook URLs carry their secret in any of them).
pub(crate) fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.has_host() => u.origin().ascii_serialization(),
        _ => "(not a URL)".to_owned(),
    }
}

fn response(key: &str, e: &NotifierEntry) -> NotifierResponse {
    NotifierResponse {
        key: key.to_owned(),
        kind: e.def.kind,
        url_origin: origin(&e.def.url),
        policy: e.def.policy.clone(),
        delivered: e.delivered.load(Ordering::Relaxed),
        failed: e.failed.load(Ordering::Relaxed),
        version: e.version,
    }
}

/// Lists notifiers (URLs reduced to their origin).
async fn list_notifiers<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<NotifierResponse>>> {
    Ok(Json(app.release.notifiers.lock().await.iter().map(|(k, e)| response(k, e)).collect()))
}

/// Reads a notifier with its delivery counters.
async fn get_notifier<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal, Path(key): Path<String>) -> ApiResult<Response> {
    let n = app.release.notifiers.lock().await;
    let e = n.get(&key).ok_or_else(|| not_found(&key))?;
    Ok(with_etag(StatusCode::OK, e.version, response(&key, e)))
}

/// Creates a notifier channel.
async fn create_notifier<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(def): Json<NotifierRequest>,
) -> ApiResult<Response> {
    let mut problems = Vec::new();
    if let Err(m) = validate::flag_key(&def.key) {
        problems.push(Invalid::new("key", m));
    }
    if !(def.url.starts_with("http://") || def.url.starts_with("https://")) || reqwest::Url::parse(&def.url).is_err() {
        problems.push(Invalid::new("url", "must be an http(s) URL"));
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let key = def.key.clone();
    let mut notifiers = app.release.notifiers.lock().await;
    if notifiers.contains_key(&key) {
        return Err(ApiError::new(ErrorCode::AlreadyExists, format!("a notifier `{key}` exists")));
    }
    let state = NotifyState::default();
    let object = ReleaseObject { kind: NOTIFIER_KIND.into(), key: key.clone(), doc: to_value(&def)?, state: to_value(&state)? };
    let mut shown = serde_json::to_value(&def).ok();
    if let Some(v) = shown.as_mut() {
        v["url"] = serde_json::Value::String(origin(&def.url));
    }
    let audit = AuditDraft {
        actor: p.actor(),
        action: "notifier.create".into(),
        target_kind: "notifier".into(),
        target: key.clone(),
        before: None,
        after: shown,
    };
    let c = app
        .write(|_| Ok::<_, ApiError>((vec![Mutation::PutReleaseObject { object, expect: Expect::Absent }], vec![audit], vec![])))
        .await??;
    let entry = NotifierEntry { def, state, version: c.versions[0], delivered: Arc::default(), failed: Arc::default() };
    let body = response(&key, &entry);
    notifiers.insert(key, entry);
    Ok(with_etag(StatusCode::CREATED, body.version, body))
}

/// Deletes a notifier.
async fn delete_notifier<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    let mut notifiers = app.release.notifiers.lock().await;
    if !notifiers.contains_key(&key) {
        return Err(not_found(&key));
    }
    let audit = AuditDraft {
        actor: p.actor(),
        action: "notifier.delete".into(),
        target_kind: "notifier".into(),
        target: key.clone(),
        before: None,
        after: None,
    };
    app.write(|_| {
        Ok::<_, ApiError>((
            vec![Mutation::DeleteReleaseObject { kind: NOTIFIER_KIND.into(), key: key.clone(), expect }],
            vec![audit],
            vec![],
        ))
    })
    .await??;
    notifiers.remove(&key);
    Ok(StatusCode::NO_CONTENT)
}
