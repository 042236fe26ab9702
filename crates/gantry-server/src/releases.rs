//! The release registry: CI records each version of an app deployed to an
//! environment (`POST /api/v1/apps/{app}/releases`), the history is listed
//! newest first, and apps ask `GET /api/v1/apps/{app}/version` whether an
//! update exists. Each new record is announced on the native stream of its
//! environment (`release-recorded`).
//!
//! Who may do what (least privilege): recording needs an admin token or a
//! server token of the release's environment (what CI already holds for its
//! deployment target); the history needs an admin or server token (server
//! tokens see their own environment); the version check accepts any token,
//! client tokens included, scoped to the token's environment, so shipped
//! apps can poll it.
//!
//! Ordering: when every version recorded for the app in the environment is a
//! semantic version (a leading `v` is allowed), "latest" is the highest by
//! semver precedence; otherwise it is the most recently recorded one.
//! Recording a version that is already recorded for that app and environment
//! changes nothing and answers 200 with the existing record (CI re-runs are
//! safe); a new record answers 201.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gantry_api_types::{ErrorCode, Page, RecordRelease, Release, TokenKind, VersionCheck};
use gantry_core::clock::rfc3339;
use gantry_core::validate::Invalid;
use gantry_core::{AuditDraft, Mutation, Store};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Principal};
use crate::state::{AppState, Change, Views};

/// Routes of the release registry.
pub fn router<St: Store>() -> Router<AppState<St>> {
    Router::new()
        .route("/api/v1/apps/{app}/releases", get(list_releases::<St>).post(record_release::<St>))
        .route("/api/v1/apps/{app}/version", get(get_version::<St>))
}

/// App names: 1 to 100 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn app_name(app: &str) -> Result<(), String> {
    let ok = !app.is_empty()
        && app.len() <= 100
        && app.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && app.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("app name `{app}` must be 1 to 100 characters of A-Z, a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"))
    }
}

fn check_record(v: &Views, r: &RecordRelease, env: &str) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, message: &str| problems.push(Invalid { field: field.into(), message: message.into() });
    if r.version.is_empty() || r.version.chars().count() > 128 || r.version.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bad("version", "1 to 128 characters without spaces");
    }
    if env.is_empty() {
        bad("environment", "required with an admin token");
    } else if v.env(env).is_none() {
        bad("environment", "no environment with this name");
    }
    if let Some(c) = &r.commit {
        if !(4..=64).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
            bad("commit", "4 to 64 hexadecimal digits");
        }
    }
    if r.notes.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
        bad("notes", "at most 10000 characters");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(problems))
    }
}

/// Records a deployed version. 201 with the record; 200 with the existing
/// record when this version was already recorded for the app and environment.
async fn record_release<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    Path(name): Path<String>,
    body: Result<Json<RecordRelease>, ApiError>,
) -> ApiResult<Response> {
    if p.kind == TokenKind::Client {
        return Err(ApiError::forbidden("client tokens may not record releases; use a server token of the environment"));
    }
    let Json(body) = body?;
    let env = match (&p.environment, &body.environment) {
        (Some(scope), Some(asked)) if scope != asked => {
            return Err(ApiError::forbidden(format!("this token is scoped to environment `{scope}`")));
        }
        (_, Some(e)) | (Some(e), None) => e.clone(),
        (None, None) => String::new(),
    };
    app_name(&name).map_err(|e| ApiError::new(ErrorCode::InvalidKey, e))?;
    let now = rfc3339(app.clock.now());
    let mut existing = None;
    let r = app
        .write(|v| {
            check_record(v, &body, &env)?;
            let same = v.releases.get(&name).and_then(|rs| rs.iter().find(|r| r.environment == env && r.version == body.version));
            if let Some(same) = same {
                existing = Some(same.clone());
                return Err(ApiError::new(ErrorCode::AlreadyExists, "recorded already"));
            }
            let id = v.releases.values().flatten().map(|r| r.id).max().unwrap_or(0) + 1;
            let release = Release {
                id,
                app: name.clone(),
                version: body.version.clone(),
                environment: env.clone(),
                commit: body.commit.clone(),
                notes: body.notes.clone(),
                released_at: now.clone(),
                recorded_by: p.actor(),
            };
            Ok((
                vec![Mutation::InsertRelease(release.clone())],
                vec![AuditDraft {
                    actor: p.actor(),
                    action: "release.record".into(),
                    target_kind: "release".into(),
                    target: format!("{name}@{}", body.version),
                    before: None,
                    after: serde_json::to_value(&release).ok(),
                }],
                vec![Change::Release(release)],
            ))
        })
        .await;
    if let Some(same) = existing {
        return Ok((StatusCode::OK, axum::Json(same)).into_response());
    }
    let c = r?.map_err(ApiError::from)?;
    let id = c.versions.first().copied().unwrap_or_default();
    let v = app.views();
    let rec = v
        .releases
        .get(&name)
        .and_then(|rs| rs.iter().rev().find(|r| r.id == id))
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "release vanished after commit"))?;
    Ok((StatusCode::CREATED, axum::Json(rec)).into_response())
}

/// Query of the release history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListReleasesParams {
    /// Only this environment (server tokens: their own, always).
    environment: Option<String>,
    /// Page size (1..=500, default 50).
    limit: Option<u32>,
    /// Record id after which (older) the page starts.
    cursor: Option<String>,
}

/// The history of an app, newest first, paginated.
async fn list_releases<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    Path(name): Path<String>,
    q: Result<Query<ListReleasesParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Page<Release>>> {
    if p.kind == TokenKind::Client {
        return Err(ApiError::forbidden("client tokens may only ask for the latest version (GET /api/v1/apps/{app}/version)"));
    }
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let env = match (&p.environment, q.environment) {
        (Some(scope), Some(asked)) if *scope != asked => {
            return Err(ApiError::forbidden(format!("this token is scoped to environment `{scope}`")))
        }
        (Some(scope), _) => Some(scope.clone()),
        (None, asked) => asked,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit must be between 1 and 500"));
    }
    let cursor = match q.cursor.as_deref().map(str::parse::<i64>) {
        None => i64::MAX,
        Some(Ok(c)) => c,
        Some(Err(_)) => return Err(ApiError::new(ErrorCode::InvalidQuery, "cursor must come from a previous page")),
    };
    let v = app.views();
    let matching: Vec<&Release> = v
        .releases
        .get(&name)
        .map(|rs| rs.iter().rev().filter(|r| env.as_deref().is_none_or(|e| r.environment == e)).collect())
        .unwrap_or_default();
    let total = matching.len() as u64;
    let rest: Vec<&Release> = matching.into_iter().filter(|r| r.id < cursor).collect();
    let items: Vec<Release> = rest.iter().take(limit as usize).map(|r| (*r).clone()).collect();
    let next_cursor = (rest.len() > items.len()).then(|| items.last().map(|r| r.id.to_string())).flatten();
    Ok(axum::Json(Page { items, next_cursor, total }))
}

/// Query of the version check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionParams {
    /// The caller's version.
    current: Option<String>,
    /// Environment (admin tokens must name it; others use their own).
    environment: Option<String>,
}

fn parse_semver(s: &str) -> Option<semver::Version> {
    semver::Version::parse(s.strip_prefix('v').unwrap_or(s)).ok()
}

/// The latest release and whether semver ordering applied.
pub fn latest<'a>(releases: &[&'a Release]) -> Option<(&'a Release, bool)> {
    let parsed: Option<Vec<(semver::Version, &Release)>> = releases.iter().map(|r| parse_semver(&r.version).map(|v| (v, *r))).collect();
    match parsed {
        Some(p) if !p.is_empty() => p.into_iter().max_by(|a, b| a.0.cmp_precedence(&b.0).then(a.1.id.cmp(&b.1.id))).map(|(_, r)| (r, true)),
        _ => releases.iter().max_by_key(|r| r.id).map(|r| (*r, false)),
    }
}

/// Whether `latest` is an update for `current`.
pub fn update_available(latest: &str, current: &str, semver_order: bool) -> bool {
    match (semver_order, parse_semver(latest), parse_semver(current)) {
        (true, Some(l), Some(c)) => l.cmp_precedence(&c).is_gt(),
        _ => latest != current,
    }
}

/// Is there an update? The latest version of the app in the environment,
/// compared with `current`; ETag and 304 for polling.
async fn get_version<St: Store>(
    State(app): State<AppState<St>>,
    p: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    q: Result<Query<VersionParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let env = match (&p.environment, q.environment) {
        (Some(scope), Some(asked)) if *scope != asked => {
            return Err(ApiError::forbidden(format!("this token is scoped to environment `{scope}`")))
        }
        (Some(scope), _) => scope.clone(),
        (None, Some(asked)) => asked,
        (None, None) => return Err(ApiError::new(ErrorCode::InvalidQuery, "`environment` is required with an admin token")),
    };
    let v = app.views();
    let rs: Vec<&Release> = v.releases.get(&name).map(|rs| rs.iter().filter(|r| r.environment == env).collect()).unwrap_or_default();
    let (latest, semver_order) =
        latest(&rs).ok_or_else(|| ApiError::new(ErrorCode::ReleaseNotFound, format!("no release of `{name}` is recorded in `{env}`")))?;
    let check = VersionCheck {
        app: name.clone(),
        environment: env,
        latest: latest.version.clone(),
        update_available: q.current.as_deref().is_some_and(|c| update_available(&latest.version, c, semver_order)),
        current: q.current,
        released_at: latest.released_at.clone(),
        commit: latest.commit.clone(),
        notes: latest.notes.clone(),
        ordering: if semver_order { "semver" } else { "recorded" }.into(),
    };
    let body = serde_json::to_vec(&check).unwrap_or_default();
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..12]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim().strip_prefix("W/") == Some(etag.as_str())));
    let mut res = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    if let Ok(h) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(header::ETAG, h);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(id: i64, version: &str) -> Release {
        Release {
            id,
            app: "a".into(),
            version: version.into(),
            environment: "e".into(),
            commit: None,
            notes: None,
            released_at: String::new(),
            recorded_by: String::new(),
        }
    }

    #[test]
    fn semver_orders_by_precedence_and_falls_back_to_record_order() {
        let rs = [rel(1, "1.10.0"), rel(2, "v1.9.3"), rel(3, "1.10.0-rc.1")];
        let refs: Vec<&Release> = rs.iter().collect();
        let (l, semver_order) = latest(&refs).unwrap();
        assert_eq!((l.id, semver_order), (1, true));
        assert!(update_available("1.10.0", "1.9.3", true));
        assert!(!update_available("1.10.0", "1.10.0", true));
        assert!(!update_available("1.10.0", "2.0.0", true));
        let rs = [rel(1, "build-20"), rel(2, "build-3"), rel(3, "1.0.0")];
        let refs: Vec<&Release> = rs.iter().collect();
        let (l, semver_order) = latest(&refs).unwrap();
        assert_eq!((l.id, semver_order), (3, false));
        assert!(update_available("build-3", "build-20", false));
        assert!(latest(&[]).is_none());
    }

    #[test]
    fn app_names_are_checked() {
        assert!(app_name("web-shop.v2").is_ok());
        assert!(app_name("").is_err());
        assert!(app_name("-x").is_err());
        assert!(app_name("a b").is_err());
    }
}
