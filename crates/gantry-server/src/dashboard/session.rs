//! Dashboard sign-in, sessions and CSRF.
//!
//! Sign-in takes an admin token, checked by [`AppState::authenticate`] (the
//! same constant-time lookup as the API). It opens a server-side session: the
//! browser holds only an opaque random id in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` behind TLS); memory holds the id's SHA-256, so a memory
//! dump does not give usable cookies. A session ends after [`IDLE`] without a
//! request, after [`ABSOLUTE`] in any case (both measured with the injected
//! clock), on sign-out, and as soon as the token it was opened with is
//! revoked or expires.
//!
//! Every state-changing request goes through [`Posted`], which requires the
//! session's CSRF token in the `_csrf` form field and, when the browser sends
//! `Origin`, that it names this host. The sign-in form itself is protected by
//! a double-submit cookie, since there is no session yet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Form, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gantry_api_types::TokenKind;
use gantry_core::Store;
use serde::Deserialize;

use super::html::Html;
use super::layout;
use crate::error::ApiError;
use crate::extract::Principal;
use crate::html;
use crate::state::AppState;

/// Session cookie name.
pub const COOKIE: &str = "gantry_session";
/// Sign-in form cookie (double submit).
pub const SIGNIN_COOKIE: &str = "gantry_signin";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, whatever happens.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone)]
struct Record {
    token_id: String,
    csrf: String,
    created_ms: i64,
    last_seen_ms: i64,
}

/// Open sessions, keyed by the SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Record>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("Sessions").field("open", &n).finish()
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn expired(r: &Record, now_ms: i64) -> bool {
    now_ms - r.last_seen_ms > IDLE.as_millis() as i64 || now_ms - r.created_ms > ABSOLUTE.as_millis() as i64
}

impl Sessions {
    /// Opens a session for a token; returns the cookie value.
    pub fn open(&self, token_id: &str, now_ms: i64) -> String {
        let id = random_hex(32);
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, r| !expired(r, now_ms));
        m.insert(
            gantry_core::token::hash(&id),
            Record { token_id: token_id.to_owned(), csrf: random_hex(32), created_ms: now_ms, last_seen_ms: now_ms },
        );
        id
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&gantry_core::token::hash(id));
    }

    /// Number of open sessions (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live session with this id, touched; expired ones are removed.
    fn touch(&self, id: &str, now_ms: i64) -> Option<Record> {
        let key = gantry_core::token::hash(id);
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let r = m.get_mut(&key)?;
        if expired(r, now_ms) {
            m.remove(&key);
            return None;
        }
        r.last_seen_ms = now_ms;
        Some(r.clone())
    }

    /// Whether the session is still open, without touching it (live streams).
    pub fn is_open(&self, id_hash: &str, now_ms: i64) -> bool {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(id_hash).is_some_and(|r| !expired(r, now_ms))
    }
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so).
pub fn over_tls(parts_uri: &axum::http::Uri, headers: &HeaderMap) -> bool {
    parts_uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("gantry_invalid=1"))
}

/// Whether the token a session was opened with still authenticates.
fn token_still_valid<St: Store>(app: &AppState<St>, token_id: &str) -> bool {
    if token_id == "env-admin" {
        return app.env_admin_hash.is_some();
    }
    let v = app.views();
    v.tokens
        .get(token_id)
        .is_some_and(|t| t.kind == TokenKind::Admin && t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > app.clock.now()))
}

/// A signed-in dashboard user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The admin token the session was opened with.
    pub token_id: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// SHA-256 of the session id.
    pub id_hash: String,
    /// The request asked for the page's content only (live refresh).
    pub fragment: bool,
}

impl Session {
    /// The principal the admin API sees for this session.
    pub fn principal(&self) -> Principal {
        Principal { token_id: self.token_id.clone(), kind: TokenKind::Admin, environment: None }
    }
}

/// Where to send someone who is not signed in.
fn to_sign_in(parts: &Parts) -> Response {
    let wants_page = parts.headers.get("gantry-fragment").is_none()
        && !parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    if !wants_page {
        return (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], "sign in again").into_response();
    }
    let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui/flags");
    let target = if parts.method == axum::http::Method::GET { next } else { "/ui/flags" };
    Redirect::to(&format!("/ui/sign-in?next={}", super::html_url_encode(target))).into_response()
}

impl<St: Store> FromRequestParts<AppState<St>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState<St>) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie(&parts.headers, COOKIE) else { return Err(to_sign_in(parts)) };
        let now = app.clock.now_millis();
        let Some(r) = app.dashboard.touch(id, now) else { return Err(to_sign_in(parts)) };
        if !token_still_valid(app, &r.token_id) {
            app.dashboard.close(id);
            return Err(to_sign_in(parts));
        }
        Ok(Session {
            token_id: r.token_id,
            csrf: r.csrf,
            id_hash: gantry_core::token::hash(id),
            fragment: parts.headers.get("gantry-fragment").is_some(),
        })
    }
}

/// Form fields, in order (repeated names allowed).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value, trimmed, `None` when empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// Every value of a field.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether a checkbox is ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
    }
}

/// Whether `Origin`, when present, names this host.
fn origin_ok(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    let Ok(origin) = origin.to_str() else { return false };
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// The refusal of a forged or stale form: a page for browsers, the error
/// envelope for everything else.
pub fn csrf_refused(headers: &HeaderMap) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    let msg = "the request did not come from a dashboard form of this server (CSRF check failed)";
    if !wants_html {
        return ApiError::forbidden(msg).into_response();
    }
    let body = html!(
        "<section class=\"card\"><h1>Request refused</h1><p class=\"error\" role=\"alert\">This form did not come from this dashboard, or it belongs to a session that has ended (CSRF check failed). Nothing was changed.</p><p><a href=\"/ui/flags\">Back to the dashboard</a></p></section>"
    );
    let mut r = layout::bare("Request refused", body);
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

/// A state-changing request from a signed-in user whose CSRF token and
/// origin checked out. Every dashboard POST handler takes one.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The session.
    pub session: Session,
    /// The form.
    pub fields: Fields,
}

impl<St: Store> FromRequest<AppState<St>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState<St>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, app).await?;
        let headers = parts.headers.clone();
        if !origin_ok(&headers) {
            return Err(csrf_refused(&headers));
        }
        let req = Request::from_parts(parts, body);
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(req, app).await.map_err(|_| csrf_refused(&headers))?;
        let fields = Fields(fields);
        let sent = fields.get("_csrf").unwrap_or("");
        if !gantry_core::token::ct_eq(sent, &session.csrf) {
            return Err(csrf_refused(&headers));
        }
        Ok(Posted { session, fields })
    }
}

// === sign-in and sign-out ===

/// Query of the sign-in page.
#[derive(Debug, Deserialize, Default)]
pub struct SignInParams {
    /// Where to go afterwards.
    next: Option<String>,
}

/// Only paths of this dashboard are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.contains('\\') && n.bytes().all(|b| b.is_ascii_graphic()) => n,
        _ => "/ui/flags",
    }
}

fn sign_in_page(token: &str, next: &str, error: Option<&str>) -> Html {
    let err = match error {
        Some(e) => html!("<p class=\"error\" role=\"alert\" id=\"sign-in-error\">{}</p>", e),
        None => Html::new(),
    };
    html!(
        "<section class=\"card narrow\"><h1>Sign in to Gantry</h1>{}<form method=\"post\" action=\"/ui/sign-in\" class=\"stack\">\
<input type=\"hidden\" name=\"_csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
<label for=\"token\">Admin token</label><input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus {}>\
<p class=\"hint\">An admin token: printed on the first start, or <code>gantry token create --kind admin</code>.</p>\
<button type=\"submit\" class=\"primary\">Sign in</button></form></section>",
        err,
        token,
        next,
        if error.is_some() { html!("aria-describedby=\"sign-in-error\" aria-invalid=\"true\"") } else { Html::new() }
    )
}

/// The sign-in form.
pub async fn get_sign_in<St: Store>(
    State(app): State<AppState<St>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    q: Result<Query<SignInParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = q.as_ref().ok().and_then(|q| q.next.as_deref()).map(|n| safe_next(Some(n)).to_owned()).unwrap_or_else(|| "/ui/flags".into());
    if let Some(id) = cookie(&headers, COOKIE) {
        if let Some(r) = app.dashboard.touch(id, app.clock.now_millis()) {
            if token_still_valid(&app, &r.token_id) {
                return Redirect::to(&next).into_response();
            }
        }
    }
    let token = random_hex(16);
    let mut r = layout::bare("Sign in", sign_in_page(&token, &next, None));
    r.headers_mut().append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, &token, "/ui/sign-in", Some(3600), over_tls(&uri, &headers)));
    r
}

/// Checks the admin token and opens a session.
pub async fn post_sign_in<St: Store>(
    State(app): State<AppState<St>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else { return csrf_refused(&headers) };
    let f = Fields(fields);
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or("");
    let sent = f.get("_csrf").unwrap_or("");
    if !origin_ok(&headers) || expected.is_empty() || !gantry_core::token::ct_eq(sent, expected) {
        return csrf_refused(&headers);
    }
    let next = safe_next(f.get("next")).to_owned();
    let secret = f.get("token").unwrap_or("").trim();
    match app.authenticate(secret) {
        Some((token_id, TokenKind::Admin, _)) => {
            let id = app.dashboard.open(&token_id, app.clock.now_millis());
            tracing::info!(token.id = %token_id, "dashboard sign-in");
            let secure = over_tls(&uri, &headers);
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, &id, "/", None, secure));
            r.headers_mut().append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", "/ui/sign-in", Some(0), secure));
            r
        }
        other => {
            let why = if other.is_some() {
                "That token is valid but is not an admin token; the dashboard needs an admin token."
            } else {
                "That is not a valid admin token (unknown, revoked or expired)."
            };
            let mut r = layout::bare("Sign in", sign_in_page(expected, &next, Some(why)));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
    }
}

/// Ends the session.
pub async fn post_sign_out<St: Store>(State(app): State<AppState<St>>, headers: HeaderMap, uri: axum::http::Uri, p: Posted) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        app.dashboard.close(id);
    }
    tracing::info!(token.id = %p.session.token_id, "dashboard sign-out");
    let mut r = Redirect::to("/ui/sign-in").into_response();
    r.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, "", "/", Some(0), over_tls(&uri, &headers)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_idle_and_absolute() {
        let s = Sessions::default();
        let t0 = 1_000_000;
        let id = s.open("tok", t0);
        assert!(s.touch(&id, t0 + 1000).is_some());
        // Idle: just inside, then beyond.
        let idle = IDLE.as_millis() as i64;
        assert!(s.touch(&id, t0 + 1000 + idle).is_some());
        assert!(s.touch(&id, t0 + 1000 + 2 * idle + 1).is_none());
        // Absolute: kept busy, still ends.
        let id = s.open("tok", t0);
        let mut t = t0;
        while t < t0 + ABSOLUTE.as_millis() as i64 {
            assert!(s.touch(&id, t).is_some());
            t += idle / 2;
        }
        assert!(s.touch(&id, t0 + ABSOLUTE.as_millis() as i64 + 1).is_none());
    }

    #[test]
    fn only_dashboard_paths_are_followed() {
        assert_eq!(safe_next(Some("/ui/flags/x")), "/ui/flags/x");
        for bad in ["//evil.example", "https://evil.example", "/api/v1/flags", "/ui\\..", "/\\evil", "/ui/x\r\nSet-Cookie: a=b", "/ui/ x"] {
            assert_eq!(safe_next(Some(bad)), "/ui/flags", "{bad}");
        }
    }

    #[test]
    fn origin_must_name_this_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4242"));
        assert!(origin_ok(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:4242"));
        assert!(origin_ok(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!origin_ok(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_ok(&h));
    }
}
