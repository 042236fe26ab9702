//! The admin API under `/api/v1`: projects, environments, flags, segments,
//! tokens, audit, export/import and usage. Every write goes through
//! [`AppState::write`], so it is audited in the same transaction.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use gantry_api_types::{
    AuditEntryResponse, AuditVerification, CreateTokenRequest, CreatedToken, Environment, ErrorCode, ExportDocument, FlagResponse,
    FlagUsage, ImportSummary, Page, Project, SegmentResponse, TokenInfo, TokenKind,
};
use gantry_core::clock::rfc3339;
use gantry_core::{validate, AuditDraft, Expect, Mutation, Store, StoredFlag, StoredToken};
use gantry_engine::model::{EnvironmentConfig, Flag, Segment};
use gantry_engine::unleash;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminPrincipal, Json, Principal};
use crate::state::{AppState, Change, Views};

/// Routes of the admin API.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/projects", get(list_projects))
        .route("/api/v1/environments", get(list_environments::<St>).post(create_environment::<St>))
        .route("/api/v1/environments/{name}", get(get_environment::<St>).put(update_environment::<St>).delete(delete_environment::<St>))
        .route("/api/v1/flags", get(list_flags::<St>).post(create_flag::<St>))
        .route("/api/v1/flags/{key}", get(get_flag::<St>).put(update_flag::<St>).delete(delete_flag::<St>))
        .route("/api/v1/flags/{key}/environments/{env}", put(update_flag_environment::<St>))
        .route("/api/v1/flags/{key}/environments/{env}/on", post(switch_on::<St>))
        .route("/api/v1/flags/{key}/environments/{env}/off", post(switch_off::<St>))
        .route("/api/v1/flags/{key}/usage", get(get_flag_usage::<St>))
        .route("/api/v1/segments", get(list_segments::<St>).post(create_segment::<St>))
        .route("/api/v1/segments/{id}", get(get_segment::<St>).put(update_segment::<St>).delete(delete_segment::<St>))
        .route("/api/v1/tokens", get(list_tokens::<St>).post(create_token::<St>))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token::<St>))
        .route("/api/v1/audit", get(list_audit::<St>))
        .route("/api/v1/audit/verify", get(verify_audit::<St>))
        .route("/api/v1/export", get(export_state::<St>))
        .merge(
            Router::new()
                .route("/api/v1/import", post(import_state::<St>))
                .route("/api/v1/import/unleash", post(import_unleash::<St>))
                // Whole-state documents are large; everything else keeps the default limit.
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/api/v1/usage", get(list_usage::<St>))
}

/// Body limit of the import routes (64 MiB).
pub const IMPORT_BODY_LIMIT: usize = 64 << 20;

// === helpers ===

fn audit(
    p: &Principal,
    action: &str,
    kind: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> AuditDraft {
    AuditDraft { actor: p.actor(), action: action.into(), target_kind: kind.into(), target: target.into(), before, after }
}

fn json_of<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Parses `If-Match` (`"3"`, `3`, `W/"3"` or `*`).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Expect, ApiError> {
    let Some(v) = headers.get("if-match") else { return Ok(Expect::Exists) };
    let s = v.to_str().map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "If-Match is not text"))?.trim();
    if s == "*" {
        return Ok(Expect::Exists);
    }
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>()
        .map(Expect::Version)
        .map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "If-Match must be an ETag from a GET of this object"))
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn flag_response(f: &StoredFlag) -> FlagResponse {
    FlagResponse { flag: f.flag.clone(), version: f.version, created_at: rfc3339(f.created_at), updated_at: rfc3339(f.updated_at) }
}

pub(crate) fn with_etag<T: serde::Serialize>(status: StatusCode, version: i64, body: T) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert("etag", etag(version));
    r
}

fn env_names(v: &Views) -> Vec<String> {
    v.environments.iter().map(|e| e.environment.name.clone()).collect()
}

fn segments_of(v: &Views) -> Vec<Segment> {
    v.segments.values().map(|s| s.segment.clone()).collect()
}

fn check_flag(v: &Views, flag: &Flag) -> Result<(), ApiError> {
    let problems = validate::flag(flag, &env_names(v), &segments_of(v));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(problems))
    }
}

fn committed<T>(r: Result<T, gantry_core::StoreError>) -> Result<T, ApiError> {
    r.map_err(ApiError::from)
}

// === projects and environments ===

/// Lists projects (one default project).
async fn list_projects(_admin: AdminPrincipal) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(vec![Project { id: "default".into(), name: "Default".into() }]))
}

/// Lists environments.
async fn list_environments<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<Environment>>> {
    Ok(Json(app.views().environments.iter().map(|e| e.environment.clone()).collect()))
}

/// Reads one environment.
async fn get_environment<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let v = app.views();
    let e = v
        .environments
        .iter()
        .find(|e| e.environment.name == name)
        .ok_or_else(|| ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{name}` not found")))?;
    Ok(with_etag(StatusCode::OK, e.version, &e.environment))
}

/// Creates an environment.
pub(crate) async fn create_environment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(env): Json<Environment>,
) -> ApiResult<Response> {
    validate::environment_name(&env.name).map_err(|e| ApiError::new(ErrorCode::InvalidKey, e))?;
    let name = env.name.clone();
    let r = app
        .write(|_| {
            Ok::<_, ApiError>((
                vec![Mutation::PutEnvironment { environment: env.clone(), expect: Expect::Absent }],
                vec![audit(&p, "environment.create", "environment", &name, None, json_of(&env))],
                vec![Change::Reset],
            ))
        })
        .await?;
    let c = committed(r)?;
    Ok(with_etag(
        StatusCode::CREATED,
        c.versions[0],
        app.views().environments.iter().find(|e| e.environment.name == name).map(|e| &e.environment),
    ))
}

/// Replaces an environment's settings.
pub(crate) async fn update_environment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(env): Json<Environment>,
) -> ApiResult<Response> {
    if env.name != name {
        return Err(ApiError::validation(vec![validate_invalid("name", "must equal the name in the path")]));
    }
    let expect = if_match(&headers)?;
    let r = app
        .write(|v| {
            let before = v.environments.iter().find(|e| e.environment.name == name).map(|e| e.environment.clone());
            Ok::<_, ApiError>((
                vec![Mutation::PutEnvironment { environment: env.clone(), expect }],
                vec![audit(&p, "environment.update", "environment", &name, json_of(&before), json_of(&env))],
                vec![Change::Reset],
            ))
        })
        .await?;
    let c = committed(r)?;
    Ok(with_etag(StatusCode::OK, c.versions[0], &env))
}

fn validate_invalid(field: &str, message: &str) -> validate::Invalid {
    validate::Invalid { field: field.into(), message: message.into() }
}

/// Deletes an environment (its configuration stays in flags until they are saved again).
pub(crate) async fn delete_environment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    let r = app
        .write(|v| {
            if v.environments.len() <= 1 {
                return Err(ApiError::new(ErrorCode::InUse, "the last environment cannot be deleted"));
            }
            if v.tokens.values().any(|t| t.revoked_at.is_none() && t.environment.as_deref() == Some(name.as_str())) {
                return Err(ApiError::new(ErrorCode::InUse, format!("active tokens are scoped to `{name}`; revoke them first")));
            }
            let before = v.environments.iter().find(|e| e.environment.name == name).map(|e| e.environment.clone());
            let mut mutations = vec![Mutation::DeleteEnvironment { name: name.clone(), expect }];
            if v.maintenance.contains_key(&name) {
                // A recreated environment must not inherit old maintenance settings.
                mutations.push(Mutation::PutMaintenance {
                    environment: name.clone(),
                    maintenance: gantry_api_types::Maintenance::default(),
                    expect: Expect::Any,
                });
            }
            Ok((mutations, vec![audit(&p, "environment.delete", "environment", &name, json_of(&before), None)], vec![Change::Reset]))
        })
        .await?;
    committed(r)?;
    Ok(StatusCode::NO_CONTENT)
}

// === flags ===

/// Query of the flag list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFlagsParams {
    /// Substring of the key or description (case-insensitive).
    q: Option<String>,
    /// Required tag.
    tag: Option<String>,
    /// Page size (1..=500, default 100).
    limit: Option<u32>,
    /// Key after which the page starts.
    cursor: Option<String>,
}

/// Lists flags, searchable by key and tag, paginated by key.
async fn list_flags<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    q: Result<Query<ListFlagsParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Page<FlagResponse>>> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit must be between 1 and 500"));
    }
    let needle = q.q.as_deref().map(str::to_lowercase);
    let v = app.views();
    let matching: Vec<&StoredFlag> = v
        .flags
        .values()
        .filter(|f| {
            needle.as_deref().is_none_or(|n| {
                f.flag.key.to_lowercase().contains(n) || f.flag.description.as_deref().is_some_and(|d| d.to_lowercase().contains(n))
            })
        })
        .filter(|f| q.tag.as_deref().is_none_or(|t| f.flag.tags.iter().any(|x| x == t)))
        .collect();
    let total = matching.len() as u64;
    let start = q.cursor.as_deref().map_or(0, |c| matching.partition_point(|f| f.flag.key.as_str() <= c));
    let page: Vec<FlagResponse> = matching[start..].iter().take(limit as usize).map(|f| flag_response(f)).collect();
    let next_cursor = (start + page.len() < matching.len()).then(|| page.last().map(|f| f.flag.key.clone())).flatten();
    Ok(Json(Page { items: page, next_cursor, total }))
}

/// Reads one flag, with its version as ETag.
async fn get_flag<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal, Path(key): Path<String>) -> ApiResult<Response> {
    let v = app.views();
    let f = v.flags.get(&key).ok_or_else(|| ApiError::new(ErrorCode::FlagNotFound, format!("flag `{key}` not found")))?;
    Ok(with_etag(StatusCode::OK, f.version, flag_response(f)))
}

/// Creates a flag.
pub(crate) async fn create_flag<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(flag): Json<Flag>,
) -> ApiResult<Response> {
    validate::flag_key(&flag.key).map_err(|e| ApiError::new(ErrorCode::InvalidKey, e))?;
    let key = flag.key.clone();
    let r = app
        .write(|v| {
            check_flag(v, &flag)?;
            Ok::<_, ApiError>((
                vec![Mutation::PutFlag { flag: flag.clone(), expect: Expect::Absent }],
                vec![audit(&p, "flag.create", "flag", &key, None, json_of(&flag))],
                vec![Change::Flag(flag.clone())],
            ))
        })
        .await?;
    committed(r)?;
    let v = app.views();
    let f = v.flags.get(&key).ok_or_else(|| ApiError::new(ErrorCode::Internal, "flag vanished after commit"))?;
    Ok(with_etag(StatusCode::CREATED, f.version, flag_response(f)))
}

async fn write_flag<St: Store>(
    app: &AppState<St>,
    p: &Principal,
    key: &str,
    expect: Expect,
    action: &str,
    edit: impl FnOnce(Option<&Flag>) -> Result<Flag, ApiError>,
) -> ApiResult<Response> {
    let r = app
        .write(|v| {
            let before = v.flags.get(key).map(|f| &f.flag);
            if before.is_none() {
                return Err(ApiError::new(ErrorCode::FlagNotFound, format!("flag `{key}` not found")));
            }
            let mut flag = edit(before)?;
            // Configuration of a deleted environment stays in stored flags; it
            // must not block edits (the kill switch least of all): it is dropped
            // when the flag is saved. New unknown environments are still refused.
            if let Some(b) = before {
                flag.environments.retain(|env, _| v.env(env).is_some() || !b.environments.contains_key(env));
            }
            check_flag(v, &flag)?;
            Ok((
                vec![Mutation::PutFlag { flag: flag.clone(), expect }],
                vec![audit(p, action, "flag", key, before.and_then(json_of), json_of(&flag))],
                vec![Change::Flag(flag)],
            ))
        })
        .await?;
    committed(r)?;
    let v = app.views();
    let f = v.flags.get(key).ok_or_else(|| ApiError::new(ErrorCode::Internal, "flag vanished after commit"))?;
    Ok(with_etag(StatusCode::OK, f.version, flag_response(f)))
}

/// Replaces a flag. `If-Match` makes it conditional (412 when stale).
pub(crate) async fn update_flag<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(flag): Json<Flag>,
) -> ApiResult<Response> {
    if flag.key != key {
        return Err(ApiError::validation(vec![validate_invalid("key", "must equal the key in the path (keys cannot be renamed)")]));
    }
    let expect = if_match(&headers)?;
    write_flag(&app, &p, &key, expect, "flag.update", |_| Ok(flag)).await
}

/// Replaces one environment's configuration of a flag.
pub(crate) async fn update_flag_environment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((key, env)): Path<(String, String)>,
    headers: HeaderMap,
    Json(cfg): Json<EnvironmentConfig>,
) -> ApiResult<Response> {
    let expect = if_match(&headers)?;
    write_flag(&app, &p, &key, expect, "flag.environment.update", |before| {
        let mut f = before.cloned().unwrap_or_default();
        f.environments.insert(env.clone(), cfg);
        Ok(f)
    })
    .await
}

async fn switch<St: Store>(app: AppState<St>, p: Principal, key: String, env: String, headers: HeaderMap, on: bool) -> ApiResult<Response> {
    let expect = if_match(&headers)?;
    if app.views().env(&env).is_none() {
        return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{env}` not found")));
    }
    write_flag(&app, &p, &key, expect, if on { "flag.switch_on" } else { "flag.switch_off" }, |before| {
        let mut f = before.cloned().unwrap_or_default();
        f.environments.entry(env.clone()).or_default().enabled = on;
        Ok(f)
    })
    .await
}

/// Turns a flag on in an environment.
pub(crate) async fn switch_on<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((key, env)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    switch(app, p, key, env, headers, true).await
}

/// Turns a flag off in an environment (the kill switch).
pub(crate) async fn switch_off<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path((key, env)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    switch(app, p, key, env, headers, false).await
}

/// Deletes a flag. Flags that others require as a prerequisite cannot be deleted.
pub(crate) async fn delete_flag<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expect = if_match(&headers)?;
    if let Some(rollout) = crate::release::unfinished_rollout_of(&app, &key).await {
        return Err(ApiError::new(ErrorCode::InUse, format!("rollout `{rollout}` is not finished; abort or delete it first")));
    }
    let r = app
        .write(|v| {
            let before = v
                .flags
                .get(&key)
                .map(|f| f.flag.clone())
                .ok_or_else(|| ApiError::new(ErrorCode::FlagNotFound, format!("flag `{key}` not found")))?;
            if let Some(child) =
                v.flags.values().find(|f| f.flag.environments.values().any(|e| e.prerequisites.iter().any(|p| p.flag == key)))
            {
                return Err(ApiError::new(ErrorCode::InUse, format!("flag `{}` has `{key}` as a prerequisite", child.flag.key)));
            }
            Ok((
                vec![Mutation::DeleteFlag { key: key.clone(), expect }],
                vec![audit(&p, "flag.delete", "flag", &key, json_of(&before), None)],
                vec![Change::FlagDeleted(key.clone())],
            ))
        })
        .await?;
    committed(r)?;
    Ok(StatusCode::NO_CONTENT)
}

// === segments ===

/// Lists segments.
async fn list_segments<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<SegmentResponse>>> {
    Ok(Json(app.views().segments.values().map(|s| SegmentResponse { segment: s.segment.clone(), version: s.version }).collect()))
}

fn parse_segment_id(s: &str) -> Result<u32, ApiError> {
    s.parse().map_err(|_| ApiError::new(ErrorCode::SegmentNotFound, format!("segment `{s}` not found (ids are numbers)")))
}

/// Reads a segment.
async fn get_segment<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_segment_id(&id)?;
    let v = app.views();
    let s = v.segments.get(&id).ok_or_else(|| ApiError::new(ErrorCode::SegmentNotFound, format!("segment `{id}` not found")))?;
    Ok(with_etag(StatusCode::OK, s.version, SegmentResponse { segment: s.segment.clone(), version: s.version }))
}

/// Creates a segment.
pub(crate) async fn create_segment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(seg): Json<Segment>,
) -> ApiResult<Response> {
    let problems = validate::segment(&seg);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let r = app
        .write(|_| {
            Ok::<_, ApiError>((
                vec![Mutation::PutSegment { segment: seg.clone(), expect: Expect::Absent }],
                vec![audit(&p, "segment.create", "segment", &seg.id.to_string(), None, json_of(&seg))],
                vec![Change::Segment(seg.clone())],
            ))
        })
        .await?;
    let c = committed(r)?;
    Ok(with_etag(StatusCode::CREATED, c.versions[0], SegmentResponse { segment: seg, version: c.versions[0] }))
}

/// Replaces a segment.
pub(crate) async fn update_segment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(seg): Json<Segment>,
) -> ApiResult<Response> {
    let id = parse_segment_id(&id)?;
    if seg.id != id {
        return Err(ApiError::validation(vec![validate_invalid("id", "must equal the id in the path")]));
    }
    let problems = validate::segment(&seg);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let expect = if_match(&headers)?;
    let r = app
        .write(|v| {
            let before = v.segments.get(&id).map(|s| s.segment.clone());
            Ok::<_, ApiError>((
                vec![Mutation::PutSegment { segment: seg.clone(), expect }],
                vec![audit(&p, "segment.update", "segment", &id.to_string(), json_of(&before), json_of(&seg))],
                vec![Change::Segment(seg.clone())],
            ))
        })
        .await?;
    let c = committed(r)?;
    Ok(with_etag(StatusCode::OK, c.versions[0], SegmentResponse { segment: seg, version: c.versions[0] }))
}

/// Deletes a segment that no flag uses.
pub(crate) async fn delete_segment<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let id = parse_segment_id(&id)?;
    let expect = if_match(&headers)?;
    let r = app
        .write(|v| {
            let before = v
                .segments
                .get(&id)
                .map(|s| s.segment.clone())
                .ok_or_else(|| ApiError::new(ErrorCode::SegmentNotFound, format!("segment `{id}` not found")))?;
            if let Some(user) =
                v.flags.values().find(|f| f.flag.environments.values().any(|e| e.rules.iter().any(|r| r.segments.contains(&id))))
            {
                return Err(ApiError::new(ErrorCode::InUse, format!("flag `{}` uses segment {id}", user.flag.key)));
            }
            if let Some(m) = v.maintenance.values().find(|m| m.maintenance.allow_segments.contains(&id)) {
                return Err(ApiError::new(ErrorCode::InUse, format!("the maintenance allowlist of `{}` uses segment {id}", m.environment)));
            }
            Ok((
                vec![Mutation::DeleteSegment { id, expect }],
                vec![audit(&p, "segment.delete", "segment", &id.to_string(), json_of(&before), None)],
                vec![Change::SegmentDeleted(id)],
            ))
        })
        .await?;
    committed(r)?;
    Ok(StatusCode::NO_CONTENT)
}

// === tokens ===

pub(crate) fn token_info(t: &StoredToken) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        kind: t.kind,
        environment: t.environment.clone(),
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
        revoked_at: t.revoked_at.map(rfc3339),
    }
}

/// Lists tokens (never their secrets).
async fn list_tokens<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(app.views().tokens.values().map(token_info).collect()))
}

/// Builds a new token record and its secret, validating the request.
pub fn new_token(
    req: &CreateTokenRequest,
    environments: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(StoredToken, String), ApiError> {
    match (req.kind, &req.environment) {
        (TokenKind::Admin, Some(_)) => {
            return Err(ApiError::validation(vec![validate_invalid("environment", "admin tokens are not scoped to an environment")]))
        }
        (TokenKind::Server | TokenKind::Client, None) => {
            return Err(ApiError::validation(vec![validate_invalid("environment", "server and client tokens need an environment")]))
        }
        (_, Some(e)) if !environments.contains(e) => {
            return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{e}` not found")))
        }
        _ => {}
    }
    let expires_at = match &req.expires_at {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| ApiError::validation(vec![validate_invalid("expires_at", "must be an RFC 3339 date-time")]))?
                .with_timezone(&chrono::Utc),
        ),
    };
    let secret = gantry_core::token::generate(req.kind);
    let t = StoredToken {
        id: gantry_core::token::new_id(),
        kind: req.kind,
        environment: req.environment.clone(),
        name: req.name.clone(),
        prefix: gantry_core::token::prefix(&secret),
        secret_hash: gantry_core::token::hash(&secret),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    Ok((t, secret))
}

/// Creates a token; the secret is in this response only.
async fn create_token<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(req): Json<CreateTokenRequest>,
) -> ApiResult<Response> {
    let created = create_token_for(&app, &p, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Creates a token (audited); the one place a secret is returned. Shared by
/// the API handler and the dashboard.
pub(crate) async fn create_token_for<St: Store>(app: &AppState<St>, p: &Principal, req: &CreateTokenRequest) -> ApiResult<CreatedToken> {
    let now = app.clock.now();
    let mut out = None;
    let r = app
        .write(|v| {
            let (t, secret) = new_token(req, &env_names(v), now)?;
            let info = token_info(&t);
            let m = Mutation::InsertToken(t);
            let a = audit(p, "token.create", "token", &info.id, None, json_of(&info));
            out = Some(CreatedToken { info, secret });
            Ok::<_, ApiError>((vec![m], vec![a], vec![]))
        })
        .await?;
    committed(r)?;
    out.ok_or_else(|| ApiError::new(ErrorCode::Internal, "token not built"))
}

/// Revokes a token (immediately refused afterwards).
pub(crate) async fn revoke_token<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let r = app
        .write(|v| {
            let t = v.tokens.get(&id).ok_or_else(|| ApiError::new(ErrorCode::TokenNotFound, format!("token `{id}` not found")))?;
            Ok::<_, ApiError>((
                vec![Mutation::RevokeToken { id: id.clone() }],
                vec![audit(&p, "token.revoke", "token", &id, json_of(&token_info(t)), None)],
                vec![],
            ))
        })
        .await?;
    committed(r)?;
    Ok(StatusCode::NO_CONTENT)
}

// === audit ===

/// Query of the audit list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    /// Entries older than this sequence number.
    before: Option<i64>,
    /// Page size (1..=500, default 100).
    limit: Option<u32>,
}

fn audit_response(e: gantry_core::AuditEntry) -> AuditEntryResponse {
    AuditEntryResponse {
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        action: e.action,
        target_kind: e.target_kind,
        target: e.target,
        before: e.before,
        after: e.after,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

/// Lists audit entries, newest first.
async fn list_audit<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    q: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Page<AuditEntryResponse>>> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit must be between 1 and 500"));
    }
    let items: Vec<AuditEntryResponse> = app.store.audit_page(q.before, limit).await?.into_iter().map(audit_response).collect();
    let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|e| e.seq.to_string())).flatten();
    let total = items.first().map_or(0, |e| e.seq as u64);
    Ok(Json(Page { items, next_cursor, total }))
}

/// Verifies the audit hash chain.
async fn verify_audit<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<AuditVerification>> {
    let all = app.store.audit_all().await?;
    Ok(Json(match gantry_core::audit::verify(&all) {
        Ok(n) => AuditVerification { ok: true, entries: n, first_bad_seq: None },
        Err(seq) => AuditVerification { ok: false, entries: all.len() as u64, first_bad_seq: Some(seq) },
    }))
}

// === export / import ===

/// Exports environments, flags and segments.
async fn export_state<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<ExportDocument>> {
    let v = app.views();
    Ok(Json(ExportDocument {
        format: 1,
        environments: v.environments.iter().map(|e| e.environment.clone()).collect(),
        flags: v.flags.values().map(|f| f.flag.clone()).collect(),
        segments: segments_of(&v),
    }))
}

/// Imports an export document: creates missing environments, upserts
/// segments and flags. All or nothing.
async fn import_state<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    Json(doc): Json<ExportDocument>,
) -> ApiResult<Json<ImportSummary>> {
    if doc.format != 1 {
        return Err(ApiError::validation(vec![validate_invalid("format", "only format 1 is supported")]));
    }
    for e in &doc.environments {
        validate::environment_name(&e.name).map_err(|m| ApiError::new(ErrorCode::InvalidKey, format!("environment `{}`: {m}", e.name)))?;
    }
    let mut summary = ImportSummary::default();
    let r = app
        .write(|v| {
            let mut envs = env_names(v);
            let mut mutations = Vec::new();
            let mut audits = Vec::new();
            for e in &doc.environments {
                if !envs.contains(&e.name) {
                    envs.push(e.name.clone());
                    mutations.push(Mutation::PutEnvironment { environment: e.clone(), expect: Expect::Absent });
                    audits.push(audit(&p, "environment.create", "environment", &e.name, None, json_of(e)));
                }
            }
            let mut segments = segments_of(v);
            for s in &doc.segments {
                let problems = validate::segment(s);
                if !problems.is_empty() {
                    return Err(ApiError::validation(problems));
                }
                segments.retain(|x| x.id != s.id);
                segments.push(s.clone());
                mutations.push(Mutation::PutSegment { segment: s.clone(), expect: Expect::Any });
                audits.push(audit(
                    &p,
                    "segment.import",
                    "segment",
                    &s.id.to_string(),
                    v.segments.get(&s.id).and_then(|x| json_of(&x.segment)),
                    json_of(s),
                ));
                summary.segments += 1;
            }
            for f in &doc.flags {
                let problems = validate::flag(f, &envs, &segments);
                if !problems.is_empty() {
                    return Err(ApiError::validation(
                        problems.into_iter().map(|i| validate_invalid(&format!("flags.{}.{}", f.key, i.field), &i.message)).collect(),
                    ));
                }
                let before = v.flags.get(&f.key).map(|x| &x.flag);
                if before.is_some() {
                    summary.flags_updated += 1;
                } else {
                    summary.flags_created += 1;
                }
                mutations.push(Mutation::PutFlag { flag: f.clone(), expect: Expect::Any });
                audits.push(audit(&p, "flag.import", "flag", &f.key, before.and_then(json_of), json_of(f)));
            }
            Ok((mutations, audits, vec![Change::Reset]))
        })
        .await?;
    committed(r)?;
    Ok(Json(summary))
}

/// Query of the Unleash import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportUnleashParams {
    /// Target environment.
    environment: String,
}

/// Merges an Unleash client-features document (or delta state) into one
/// environment: each toggle's configuration replaces that environment's
/// configuration of the flag of the same name; other environments are kept.
pub fn merge_unleash(v: &Views, doc: &unleash::ClientFeatures, env: &str) -> (Vec<Flag>, Vec<Segment>) {
    let set = unleash::to_native(doc, env);
    let flags = set
        .flags
        .into_iter()
        .map(|mut f| match v.flags.get(&f.key) {
            Some(existing) => {
                let mut merged = existing.flag.clone();
                let cfg = f.environments.remove(env).unwrap_or_default();
                let variants_differ = !merged.variants.is_empty() && merged.variants != f.variants;
                let mut cfg = cfg;
                if variants_differ {
                    cfg.variants = Some(f.variants.clone());
                } else {
                    merged.variants = f.variants.clone();
                }
                merged.environments.insert(env.to_owned(), cfg);
                merged.description = f.description.or(merged.description);
                merged.project = f.project.or(merged.project);
                merged.flag_type = f.flag_type.or(merged.flag_type);
                merged.impression_data = f.impression_data;
                merged.stale = f.stale;
                merged
            }
            None => f,
        })
        .collect();
    (flags, set.segments)
}

/// Imports an Unleash client-features document into one environment.
async fn import_unleash<St: Store>(
    State(app): State<AppState<St>>,
    AdminPrincipal(p): AdminPrincipal,
    q: Result<Query<ImportUnleashParams>, axum::extract::rejection::QueryRejection>,
    Json(state): Json<unleash::UnleashState>,
) -> ApiResult<Json<ImportSummary>> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let doc = state.into_full();
    let mut summary = ImportSummary::default();
    let r = app
        .write(|v| {
            if v.env(&q.environment).is_none() {
                return Err(ApiError::new(ErrorCode::EnvironmentNotFound, format!("environment `{}` not found", q.environment)));
            }
            let (flags, segments) = merge_unleash(v, &doc, &q.environment);
            let mut mutations = Vec::new();
            let mut audits = Vec::new();
            for s in &segments {
                mutations.push(Mutation::PutSegment { segment: s.clone(), expect: Expect::Any });
                audits.push(audit(
                    &p,
                    "segment.import",
                    "segment",
                    &s.id.to_string(),
                    v.segments.get(&s.id).and_then(|x| json_of(&x.segment)),
                    json_of(s),
                ));
                summary.segments += 1;
            }
            let env_list = env_names(v);
            for f in &flags {
                if let Err(e) = validate::flag_key(&f.key) {
                    return Err(ApiError::validation(vec![validate_invalid(&format!("features.{}", f.key), &e)]));
                }
                // Definitions Unleash SDKs accept but that do not compile (unknown
                // operators, missing segments) are imported as they are and
                // evaluate off with reason ERROR, exactly like in Unleash; they are
                // reported in the summary.
                for i in validate::flag(f, &env_list, &segments) {
                    summary.diagnostics.push(format!("{}: {}", f.key, i.message));
                }
                let before = v.flags.get(&f.key).map(|x| &x.flag);
                if before.is_some() {
                    summary.flags_updated += 1;
                } else {
                    summary.flags_created += 1;
                }
                mutations.push(Mutation::PutFlag { flag: f.clone(), expect: Expect::Any });
                audits.push(audit(&p, "flag.import_unleash", "flag", &f.key, before.and_then(json_of), json_of(f)));
            }
            Ok((mutations, audits, vec![Change::Reset]))
        })
        .await?;
    committed(r)?;
    Ok(Json(summary))
}

// === usage ===

pub(crate) fn usage_rows<St: Store>(app: &AppState<St>, stored: Vec<gantry_core::UsageRow>) -> Vec<FlagUsage> {
    // Stored rows plus what is counted but not yet flushed.
    let mut map: std::collections::BTreeMap<(String, String), gantry_core::UsageRow> =
        stored.into_iter().map(|r| ((r.flag.clone(), r.environment.clone()), r)).collect();
    let pending: Vec<gantry_core::UsageRow> = app.usage.lock().unwrap_or_else(|p| p.into_inner()).pending_rows();
    for r in pending {
        let e = map.entry((r.flag.clone(), r.environment.clone())).or_insert_with(|| gantry_core::UsageRow {
            flag: r.flag.clone(),
            environment: r.environment.clone(),
            ..Default::default()
        });
        e.yes += r.yes;
        e.no += r.no;
        e.last_evaluated_ms = e.last_evaluated_ms.max(r.last_evaluated_ms);
        for (k, n) in r.variants {
            *e.variants.entry(k).or_default() += n;
        }
    }
    map.into_values()
        .map(|r| FlagUsage {
            flag: r.flag,
            environment: r.environment,
            last_evaluated_at: chrono::DateTime::from_timestamp_millis(r.last_evaluated_ms)
                .filter(|_| r.last_evaluated_ms > 0)
                .map(rfc3339),
            yes: r.yes,
            no: r.no,
            variants: r.variants,
        })
        .collect()
}

/// Usage (stale-flag signal) of every flag.
async fn list_usage<St: Store>(State(app): State<AppState<St>>, _admin: AdminPrincipal) -> ApiResult<Json<Vec<FlagUsage>>> {
    let stored = app.store.usage().await?;
    Ok(Json(usage_rows(&app, stored)))
}

/// Usage of one flag, per environment.
async fn get_flag_usage<St: Store>(
    State(app): State<AppState<St>>,
    _admin: AdminPrincipal,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<FlagUsage>>> {
    if !app.views().flags.contains_key(&key) {
        return Err(ApiError::new(ErrorCode::FlagNotFound, format!("flag `{key}` not found")));
    }
    let stored = app.store.usage().await?;
    Ok(Json(usage_rows(&app, stored).into_iter().filter(|u| u.flag == key).collect()))
}
