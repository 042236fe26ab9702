//! Authorization matrix: every route × every kind of principal, the three
//! ways to send a token, environment scoping and token expiry.

use std::time::Duration;

use gantry_testkit::{Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{api_token, assert_error, send, T0_MS};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token needed (operations endpoints).
    Public,
    /// Admin tokens only.
    Admin,
    /// Admin or server tokens (the Unleash client API and the native stream).
    Server,
    /// Any valid token (frontend API, OFREP).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoToken,
    Unknown,
    Revoked,
    Expired,
    Admin,
    Server,
    Client,
    ServerDev,
}

const EVERYONE: [Who; 8] = [Who::NoToken, Who::Unknown, Who::Revoked, Who::Expired, Who::Admin, Who::Server, Who::Client, Who::ServerDev];

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    access: Access,
    /// A server-sent event stream: check the status and drop the response.
    sse: bool,
    /// Statuses that count as "allowed" for a principal that may call it.
    ok: &'static [u16],
}

fn route(method: Method, path: &'static str, body: Option<Value>, access: Access, ok: &'static [u16]) -> Route {
    Route { method, path, body, access, sse: false, ok }
}

fn sse(path: &'static str, access: Access) -> Route {
    Route { method: Method::GET, path, body: None, access, sse: true, ok: &[200] }
}

fn f1() -> Value {
    json!({"key": "f1", "environments": {"production": {"enabled": true}, "development": {"enabled": true}}})
}

/// Every route of the router (checked against the OpenAPI route table
/// below), with a request that succeeds for an allowed
/// caller. Destructive routes name objects that do not exist (404 = allowed),
/// so the matrix never removes what later rows need.
fn routes() -> Vec<Route> {
    use Access::*;
    vec![
        // Admin API.
        route(Method::GET, "/api/v1/projects", None, Admin, &[200]),
        route(Method::GET, "/api/v1/environments", None, Admin, &[200]),
        route(Method::POST, "/api/v1/environments", Some(json!({"name": "matrix-env"})), Admin, &[201, 409]),
        route(Method::GET, "/api/v1/environments/production", None, Admin, &[200]),
        route(Method::PUT, "/api/v1/environments/no-such-env", Some(json!({"name": "no-such-env"})), Admin, &[404]),
        route(Method::DELETE, "/api/v1/environments/no-such-env", None, Admin, &[404]),
        route(Method::GET, "/api/v1/flags", None, Admin, &[200]),
        route(Method::POST, "/api/v1/flags", Some(json!({"key": "matrix-new"})), Admin, &[201, 409]),
        route(Method::GET, "/api/v1/flags/f1", None, Admin, &[200]),
        route(Method::PUT, "/api/v1/flags/f1", Some(f1()), Admin, &[200]),
        route(Method::DELETE, "/api/v1/flags/no-such-flag", None, Admin, &[404]),
        route(Method::PUT, "/api/v1/flags/f1/environments/staging", Some(json!({"enabled": false})), Admin, &[200]),
        route(Method::POST, "/api/v1/flags/f1/environments/staging/on", None, Admin, &[200]),
        route(Method::POST, "/api/v1/flags/f1/environments/staging/off", None, Admin, &[200]),
        route(Method::GET, "/api/v1/flags/f1/usage", None, Admin, &[200]),
        route(Method::GET, "/api/v1/segments", None, Admin, &[200]),
        route(Method::POST, "/api/v1/segments", Some(json!({"id": 77})), Admin, &[201, 409]),
        route(Method::GET, "/api/v1/segments/1", None, Admin, &[200]),
        route(Method::PUT, "/api/v1/segments/1", Some(json!({"id": 1, "name": "one"})), Admin, &[200]),
        route(Method::DELETE, "/api/v1/segments/999", None, Admin, &[404]),
        route(Method::GET, "/api/v1/tokens", None, Admin, &[200]),
        route(Method::POST, "/api/v1/tokens", Some(json!({"kind": "client", "environment": "production"})), Admin, &[201]),
        route(Method::DELETE, "/api/v1/tokens/no-such-token", None, Admin, &[404]),
        route(Method::GET, "/api/v1/audit", None, Admin, &[200]),
        route(Method::GET, "/api/v1/audit/verify", None, Admin, &[200]),
        route(Method::GET, "/api/v1/export", None, Admin, &[200]),
        route(Method::POST, "/api/v1/import", Some(json!({"format": 1, "environments": [], "flags": [], "segments": []})), Admin, &[200]),
        route(Method::POST, "/api/v1/import/unleash?environment=staging", Some(json!({"version": 2, "features": []})), Admin, &[200]),
        route(Method::GET, "/api/v1/usage", None, Admin, &[200]),
        route(Method::GET, "/api/v1/experiments", None, Admin, &[200]),
        route(
            Method::POST,
            "/api/v1/experiments",
            Some(json!({"key": "m", "flag": "no-such-flag", "environment": "production"})),
            Admin,
            &[422],
        ),
        route(Method::GET, "/api/v1/experiments/none", None, Admin, &[404]),
        route(
            Method::PUT,
            "/api/v1/experiments/none",
            Some(json!({"key": "none", "flag": "f1", "environment": "production"})),
            Admin,
            &[404],
        ),
        route(Method::DELETE, "/api/v1/experiments/none", None, Admin, &[404]),
        route(Method::POST, "/api/v1/experiments/none/start", None, Admin, &[404]),
        route(Method::POST, "/api/v1/experiments/none/stop", None, Admin, &[404]),
        route(Method::GET, "/api/v1/experiments/none/results", None, Admin, &[404]),
        route(Method::GET, "/api/v1/experiments/none/results/history", None, Admin, &[404]),
        route(Method::GET, "/api/v1/rollouts", None, Admin, &[200]),
        route(
            Method::POST,
            "/api/v1/rollouts",
            Some(json!({"target": {"flag": "no-such-flag", "environment": "production"}, "steps": [{"kind": "ramp", "percentage": 10}]})),
            Admin,
            &[422],
        ),
        route(Method::GET, "/api/v1/rollouts/production/none", None, Admin, &[404]),
        route(Method::DELETE, "/api/v1/rollouts/production/none", None, Admin, &[404]),
        route(Method::POST, "/api/v1/rollouts/production/none/promote", None, Admin, &[404]),
        route(Method::POST, "/api/v1/rollouts/production/none/pause", None, Admin, &[404]),
        route(Method::POST, "/api/v1/rollouts/production/none/resume", None, Admin, &[404]),
        route(Method::POST, "/api/v1/rollouts/production/none/abort", None, Admin, &[404]),
        route(Method::POST, "/api/v1/rollouts/production/none/retry", None, Admin, &[404]),
        route(Method::GET, "/api/v1/schedules", None, Admin, &[200]),
        route(
            Method::POST,
            "/api/v1/schedules",
            Some(
                json!({"key": "m", "target": {"flag": "no-such-flag", "environment": "production"}, "changes": [{"at": 1, "action": "enable"}]}),
            ),
            Admin,
            &[422],
        ),
        route(Method::GET, "/api/v1/schedules/none", None, Admin, &[404]),
        route(Method::DELETE, "/api/v1/schedules/none", None, Admin, &[404]),
        route(Method::GET, "/api/v1/alert-rules", None, Admin, &[200]),
        route(
            Method::POST,
            "/api/v1/alert-rules",
            Some(json!({"name": "m", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.1},
                "target": {"flag": "f1", "environment": "no-such-env"}})),
            Admin,
            &[422],
        ),
        route(Method::GET, "/api/v1/alert-rules/none", None, Admin, &[404]),
        route(Method::DELETE, "/api/v1/alert-rules/none", None, Admin, &[404]),
        route(Method::GET, "/api/v1/notifiers", None, Admin, &[200]),
        route(Method::POST, "/api/v1/notifiers", Some(json!({"key": "m", "kind": "webhook", "url": "not a url"})), Admin, &[422]),
        route(Method::GET, "/api/v1/notifiers/none", None, Admin, &[404]),
        route(Method::DELETE, "/api/v1/notifiers/none", None, Admin, &[404]),
        route(Method::GET, "/api/v1/triggers", None, Admin, &[200]),
        route(
            Method::POST,
            "/api/v1/triggers",
            Some(json!({"name": "m", "action": {"type": "disable_flag", "flag": "no-such-flag", "environment": "production"}})),
            Admin,
            &[422],
        ),
        route(Method::DELETE, "/api/v1/triggers/none", None, Admin, &[404]),
        route(Method::POST, "/api/v1/triggers/hook/gantry-trigger-wrong", None, Public, &[404]),
        route(Method::POST, "/api/v1/events", Some(json!({"events": []})), Any, &[202]),
        // Unleash client API.
        route(Method::GET, "/api/client/features", None, Server, &[200]),
        route(Method::GET, "/api/client/features/f1", None, Server, &[200]),
        route(Method::POST, "/api/client/register", Some(json!({"appName": "matrix"})), Server, &[202]),
        route(Method::POST, "/api/client/metrics", Some(json!({"appName": "matrix", "bucket": {"toggles": {}}})), Server, &[202]),
        // Native SDK configuration and stream.
        route(Method::GET, "/api/v1/config", None, Server, &[200]),
        sse("/api/v1/stream", Server),
        // OFREP.
        route(Method::POST, "/ofrep/v1/evaluate/flags", Some(json!({})), Any, &[200]),
        route(Method::POST, "/ofrep/v1/evaluate/flags/f1", Some(json!({})), Any, &[200]),
        sse("/ofrep/v1/events", Any),
        // Frontend API.
        route(Method::GET, "/api/frontend", None, Any, &[200]),
        route(Method::POST, "/api/frontend", Some(json!({"context": {"userId": "u1"}})), Any, &[200]),
        route(Method::GET, "/api/frontend/all", None, Any, &[200]),
        route(Method::POST, "/api/frontend/all", Some(json!({"context": {}})), Any, &[200]),
        route(Method::GET, "/api/frontend/features/f1", None, Any, &[200]),
        route(Method::POST, "/api/frontend/client/metrics", Some(json!({"bucket": {"toggles": {}}})), Any, &[202]),
        route(Method::POST, "/api/frontend/client/register", Some(json!({"appName": "matrix"})), Any, &[202]),
        // Maintenance mode and the release registry. Recording without an
        // environment: server tokens use their own (201), admin tokens must
        // name one (422).
        route(Method::GET, "/api/v1/environments/production/maintenance", None, Admin, &[200]),
        route(Method::PUT, "/api/v1/environments/production/maintenance", Some(json!({"enabled": false})), Admin, &[200]),
        route(Method::POST, "/api/v1/apps/matrix/releases", Some(json!({"version": "1.0.0"})), Server, &[200, 201, 422]),
        route(Method::GET, "/api/v1/apps/matrix/releases", None, Server, &[200]),
        // Admin tokens must name the environment (400); others see theirs (200, or 404 before a release).
        route(Method::GET, "/api/v1/apps/matrix/version", None, Any, &[200, 400, 404]),
        // Operations.
        route(Method::GET, "/api/v1/status", None, Public, &[200]),
        route(Method::GET, "/health", None, Public, &[200]),
        route(Method::GET, "/ready", None, Public, &[200]),
        route(Method::GET, "/metrics", None, Public, &[200]),
        route(Method::GET, "/api/openapi.json", None, Public, &[200]),
    ]
}

/// Whether a concrete path (query ignored) fits a `{param}` template.
fn fits(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

/// The matrix covers every documented route, with the documented access
/// (so a new route cannot ship without a row here, nor docs drift).
#[test]
fn matrix_covers_every_documented_route() {
    use gantry_server::openapi::{Access as Doc, ROUTES};
    let rows = routes();
    let mut missing = Vec::new();
    for doc in ROUTES {
        let row = rows.iter().find(|r| r.method.as_str().eq_ignore_ascii_case(doc.method) && fits(doc.path, r.path));
        match row {
            None => missing.push(format!("{} {}: no row in the matrix", doc.method, doc.path)),
            Some(r) => {
                let documented = match doc.access {
                    Doc::Public => Access::Public,
                    Doc::Admin => Access::Admin,
                    Doc::Server => Access::Server,
                    Doc::AnyToken => Access::Any,
                };
                if documented != r.access {
                    missing.push(format!("{} {}: documented as {documented:?}, matrix expects {:?}", doc.method, doc.path, r.access));
                }
            }
        }
    }
    for r in &rows {
        if !ROUTES.iter().any(|d| r.method.as_str().eq_ignore_ascii_case(d.method) && fits(d.path, r.path)) {
            missing.push(format!("{} {}: not documented", r.method, r.path));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// What a principal must get: `Ok(())` = one of the route's allowed statuses,
/// `Err(status)` = exactly that status.
fn expected(access: Access, who: Who) -> Result<(), u16> {
    match (access, who) {
        (Access::Public, _) => Ok(()),
        (_, Who::NoToken | Who::Unknown | Who::Revoked | Who::Expired) => Err(401),
        (_, Who::Admin) => Ok(()),
        (Access::Admin, _) => Err(403),
        (Access::Server, Who::Client) => Err(403),
        (Access::Server | Access::Any, Who::Server | Who::Client | Who::ServerDev) => Ok(()),
    }
}

struct Principals {
    unknown: String,
    revoked: String,
    expired: String,
}

fn secret<'a>(app: &'a TestApp, p: &'a Principals, who: Who) -> Option<&'a str> {
    match who {
        Who::NoToken => None,
        Who::Unknown => Some(&p.unknown),
        Who::Revoked => Some(&p.revoked),
        Who::Expired => Some(&p.expired),
        Who::Admin => Some(&app.tokens.admin),
        Who::Server => Some(&app.tokens.server),
        Who::Client => Some(&app.tokens.client),
        Who::ServerDev => Some(&app.tokens.server_dev),
    }
}

/// A manual-clock app with flag `f1`, segment 1, a revoked and an expired token.
async fn setup() -> (TestApp, Principals) {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    app.create_flag(f1()).await;
    let r = send(app.req(Method::POST, "/api/v1/segments", Some(&app.tokens.admin)).json(&json!({"id": 1}))).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let (revoked_id, revoked) = api_token(&app, json!({"kind": "server", "environment": "production"})).await;
    let r = send(app.req(Method::GET, "/api/client/features", Some(&revoked))).await;
    assert_eq!(r.status, 200, "token works before revocation: {}", r.text);
    let r = send(app.req(Method::DELETE, &format!("/api/v1/tokens/{revoked_id}"), Some(&app.tokens.admin))).await;
    assert_eq!(r.status, 204, "{}", r.text);

    // T0 + 60 s.
    let (_, expired) = api_token(&app, json!({"kind": "admin", "expires_at": "2023-11-14T22:14:20Z"})).await;
    let r = send(app.req(Method::GET, "/api/v1/flags", Some(&expired))).await;
    assert_eq!(r.status, 200, "token works before expiry: {}", r.text);
    app.clock.as_ref().expect("manual clock").advance(Duration::from_secs(120));

    (app, Principals { unknown: "gantry-not-a-real-token-0123456789".into(), revoked, expired })
}

#[tokio::test]
async fn every_route_for_every_principal() {
    let (app, p) = setup().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for r in routes() {
        for who in EVERYONE {
            let mut rb = app.req(r.method.clone(), r.path, secret(&app, &p, who));
            if who == Who::Admin {
                // Admin tokens name the environment to evaluate in.
                rb = rb.header("gantry-environment", "production");
            }
            if let Some(b) = &r.body {
                rb = rb.json(b);
            }
            let label = format!("{} {} as {who:?}", r.method, r.path);
            let (status, code) = if r.sse {
                let res = rb.send().await.expect("request");
                let s = res.status().as_u16();
                let code = if s == 200 {
                    assert!(
                        res.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/event-stream")),
                        "{label}: not an event stream"
                    );
                    drop(res);
                    None
                } else {
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    body["code"].as_str().map(str::to_owned)
                };
                (s, code)
            } else {
                let res = send(rb).await;
                if res.status == 401 {
                    assert_eq!(res.header("www-authenticate"), Some("Bearer"), "{label}: 401 without WWW-Authenticate");
                }
                (res.status, res.body["code"].as_str().map(str::to_owned))
            };
            checked += 1;
            match expected(r.access, who) {
                Ok(()) if r.ok.contains(&status) => {}
                Ok(()) => failures.push(format!("{label}: expected one of {:?}, got {status} {code:?}", r.ok)),
                Err(want) => {
                    let want_code = if want == 401 { "unauthorized" } else { "forbidden" };
                    if status != want || code.as_deref() != Some(want_code) {
                        failures.push(format!("{label}: expected {want} {want_code}, got {status} {code:?}"));
                    }
                }
            }
        }
    }
    assert_eq!(checked, routes().len() * EVERYONE.len());
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
    app.stop().await;
}

/// Scoped tokens cannot reach into another environment, by header or query.
#[tokio::test]
async fn scoped_tokens_cannot_ask_for_another_environment() {
    let app = TestApp::spawn().await;
    app.create_flag(f1()).await;
    let cases: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/api/client/features", None),
        (Method::GET, "/api/client/features/f1", None),
        (Method::POST, "/api/client/register", Some(json!({"appName": "x"}))),
        (Method::POST, "/api/client/metrics", Some(json!({}))),
        (Method::POST, "/ofrep/v1/evaluate/flags", Some(json!({}))),
        (Method::POST, "/ofrep/v1/evaluate/flags/f1", Some(json!({}))),
        (Method::GET, "/ofrep/v1/events", None),
        (Method::GET, "/api/frontend", None),
        (Method::POST, "/api/frontend", Some(json!({}))),
        (Method::GET, "/api/frontend/all", None),
        (Method::GET, "/api/frontend/features/f1", None),
        (Method::POST, "/api/frontend/client/metrics", Some(json!({}))),
        (Method::GET, "/api/v1/stream", None),
        (Method::GET, "/api/v1/config", None),
    ];
    for (method, path, body) in &cases {
        for (token, other, own) in [
            (&app.tokens.server, "development", "production"),
            (&app.tokens.server_dev, "production", "development"),
            (&app.tokens.client, "staging", "production"),
        ] {
            let client_on_server_route = *token == app.tokens.client && (path.starts_with("/api/client") || path.starts_with("/api/v1/"));
            let mut rb = app.req(method.clone(), path, Some(token)).header("gantry-environment", other);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let r = send_maybe_stream(rb).await;
            assert_eq!((r.0, r.1.as_deref()), (403, Some("forbidden")), "{method} {path} asking for {other}");
            // Naming its own environment is fine.
            let mut rb = app.req(method.clone(), path, Some(token)).header("gantry-environment", own);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let r = send_maybe_stream(rb).await;
            if client_on_server_route {
                assert_eq!(r.0, 403, "{method} {path} with a client token");
            } else {
                assert!((200..300).contains(&r.0), "{method} {path} naming own environment {own}: {} {:?}", r.0, r.1);
            }
        }
    }
    // The stream also takes the environment as a query parameter.
    let r = send_maybe_stream(app.req(Method::GET, "/api/v1/stream?environment=development", Some(&app.tokens.server))).await;
    assert_eq!((r.0, r.1.as_deref()), (403, Some("forbidden")));
    let r = send_maybe_stream(app.req(Method::GET, "/api/v1/stream?environment=production", Some(&app.tokens.admin))).await;
    assert_eq!(r.0, 200);
    app.stop().await;
}

/// Sends a request that may answer with an event stream; returns the status
/// and the error code (streams are dropped unread).
async fn send_maybe_stream(rb: reqwest::RequestBuilder) -> (u16, Option<String>) {
    let res = rb.send().await.expect("request");
    let s = res.status().as_u16();
    let is_stream = res.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/event-stream"));
    if is_stream {
        return (s, None);
    }
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (s, body["code"].as_str().map(str::to_owned))
}

/// Admin tokens evaluate nowhere by default: they must name the environment.
#[tokio::test]
async fn admin_must_name_the_environment_to_evaluate_in() {
    let app = TestApp::spawn().await;
    app.create_flag(f1()).await;
    for (method, path) in [
        (Method::GET, "/api/client/features"),
        (Method::POST, "/ofrep/v1/evaluate/flags/f1"),
        (Method::POST, "/ofrep/v1/evaluate/flags"),
        (Method::GET, "/api/frontend"),
        (Method::GET, "/api/v1/stream"),
    ] {
        let r = send(app.req(method.clone(), path, Some(&app.tokens.admin)).json(&json!({}))).await;
        assert_error(&r, 400, "invalid_header");
        let r = send(app.req(method.clone(), path, Some(&app.tokens.admin)).header("gantry-environment", "nope").json(&json!({}))).await;
        assert_error(&r, 404, "environment_not_found");
    }
    app.stop().await;
}

/// A way to send a token: its name and how it becomes a header.
type Style = (&'static str, fn(&str) -> (&'static str, String));

/// `Authorization: Bearer X`, raw `Authorization: X` and `X-API-Key: X` all
/// identify the same principal.
#[tokio::test]
async fn three_header_styles_identify_the_same_principal() {
    let app = TestApp::spawn().await;
    app.create_flag(f1()).await;
    let styles: [Style; 4] = [
        ("bearer", |t| ("authorization", format!("Bearer {t}"))),
        ("lower-case bearer", |t| ("authorization", format!("bearer {t}"))),
        ("raw", |t| ("authorization", t.to_owned())),
        ("x-api-key", |t| ("x-api-key", t.to_owned())),
    ];
    for (style, make) in styles {
        let call = |method: Method, path: &str, token: &str| {
            let (h, v) = make(token);
            app.http.request(method, app.url(path)).header(h, v).json(&json!({}))
        };
        // Admin: the admin API works.
        let r = send(call(Method::GET, "/api/v1/flags", &app.tokens.admin)).await;
        assert_eq!(r.status, 200, "{style}: admin {}", r.text);
        // Server: the client API works, the admin API is forbidden (not 401).
        let r = send(call(Method::GET, "/api/client/features", &app.tokens.server)).await;
        assert_eq!(r.status, 200, "{style}: server {}", r.text);
        let r = send(call(Method::GET, "/api/v1/flags", &app.tokens.server)).await;
        assert_error(&r, 403, "forbidden");
        // Client: OFREP works, the client API is forbidden.
        let r = send(call(Method::POST, "/ofrep/v1/evaluate/flags/f1", &app.tokens.client)).await;
        assert_eq!((r.status, &r.body["value"]), (200, &json!(true)), "{style}: client {}", r.text);
        let r = send(call(Method::GET, "/api/client/features", &app.tokens.client)).await;
        assert_error(&r, 403, "forbidden");
        // Unknown secrets are refused in every style.
        let r = send(call(Method::GET, "/api/v1/flags", "not-a-token")).await;
        assert_error(&r, 401, "unauthorized");
    }
    // An empty credential is no credential.
    let r = send(app.http.get(app.url("/api/v1/flags")).header("authorization", "Bearer ")).await;
    assert_error(&r, 401, "unauthorized");
    let r = send(app.http.get(app.url("/api/v1/flags")).header("x-api-key", "  ")).await;
    assert_error(&r, 401, "unauthorized");
    app.stop().await;
}

/// A token with `expires_at` works until then and is refused after.
#[tokio::test]
async fn token_expiry_follows_the_clock() {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    app.create_flag(f1()).await;
    // T0 + 60 s.
    let (_, server) = api_token(&app, json!({"kind": "server", "environment": "production", "expires_at": "2023-11-14T22:14:20Z"})).await;
    let (_, client) = api_token(&app, json!({"kind": "client", "environment": "production", "expires_at": "2023-11-14T22:14:20Z"})).await;
    let clock = app.clock.as_ref().expect("manual clock");

    clock.advance(Duration::from_secs(59));
    let r = send(app.req(Method::GET, "/api/client/features", Some(&server))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(app.req(Method::POST, "/ofrep/v1/evaluate/flags/f1", Some(&client)).json(&json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);

    clock.advance(Duration::from_secs(2));
    let r = send(app.req(Method::GET, "/api/client/features", Some(&server))).await;
    assert_error(&r, 401, "unauthorized");
    let r = send(app.req(Method::POST, "/ofrep/v1/evaluate/flags/f1", Some(&client)).json(&json!({}))).await;
    assert_error(&r, 401, "unauthorized");
    // Tokens without expiry are unaffected.
    let r = send(app.req(Method::GET, "/api/client/features", Some(&app.tokens.server))).await;
    assert_eq!(r.status, 200);
    // A token already expired when created is refused straight away.
    let (_, stale) = api_token(&app, json!({"kind": "admin", "expires_at": "2023-11-14T22:00:00Z"})).await;
    let r = send(app.req(Method::GET, "/api/v1/flags", Some(&stale))).await;
    assert_error(&r, 401, "unauthorized");
    app.stop().await;
}
