//! The web dashboard over real HTTP: sessions (sign-in, expiry with the
//! manual clock, sign-out, revoked tokens), CSRF, writes through the admin
//! handlers (audit entries), and HTML snapshots of every page with fixed data.

use std::time::Duration;

use gantry_testkit::{Options, TestApp};
use serde_json::{json, Value};

use crate::support::{admin_get, admin_post, admin_put, audit_head, send, Reply, T0_MS};

/// A browser-like client: no automatic redirects, one session cookie.
pub struct Ui {
    base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

fn set_cookie_value(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").split_once('=').map(|x| x.1).unwrap_or("").to_owned())
}

fn set_cookie_line<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", r.headers))
}

/// The CSRF token of the first form on a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"_csrf\" value=\"")? + "name=\"_csrf\" value=\"".len();
    Some(html[at..].chars().take_while(|c| *c != '"').collect())
}

impl Ui {
    pub fn new(app: &TestApp) -> Ui {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Ui { base: app.base.clone(), http, cookie: None, csrf: None }
    }

    /// Signs in with a token; panics unless it works.
    pub async fn signed_in(app: &TestApp) -> Ui {
        let mut ui = Ui::new(app);
        let r = ui.sign_in(&app.tokens.admin).await;
        assert_eq!(r.status, 303, "sign-in failed: {}", r.text);
        let page = ui.get("/ui/flags").await;
        assert_eq!(page.status, 200, "{}", page.text);
        ui.csrf = csrf_of(&page.text);
        ui
    }

    /// Submits the sign-in form the way a browser does.
    pub async fn sign_in(&mut self, token: &str) -> Reply {
        let form = send(self.http.get(format!("{}/ui/sign-in", self.base))).await;
        assert_eq!(form.status, 200, "{}", form.text);
        let pre = set_cookie_value(&form, "gantry_signin").expect("sign-in cookie");
        let csrf = csrf_of(&form.text).expect("csrf field");
        let r = send(self.http.post(format!("{}/ui/sign-in", self.base)).header("cookie", format!("gantry_signin={pre}")).form(&[
            ("_csrf", csrf.as_str()),
            ("token", token),
            ("next", "/ui/flags"),
        ]))
        .await;
        if let Some(c) = set_cookie_value(&r, "gantry_session") {
            self.cookie = Some(c);
        }
        r
    }

    fn with_cookie(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => rb.header("cookie", format!("gantry_session={c}")),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.with_cookie(self.http.get(format!("{}{path}", self.base)))).await
    }

    /// POSTs a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(&str, &str)> = vec![("_csrf", self.csrf.as_deref().unwrap_or(""))];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[]).await
    }

    /// POSTs exactly these fields and headers.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let mut rb = self.with_cookie(self.http.post(format!("{}{path}", self.base))).form(fields);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        send(rb).await
    }
}

/// Lays tags out one per line and replaces random values, for snapshots.
pub fn scrub(html: &str) -> String {
    let mut s = html.replace("><", ">\n<");
    let mut out = String::with_capacity(s.len());
    // Hex runs of 16+ characters are ids, CSRF tokens and hashes.
    let mut run = String::new();
    for c in s.drain(..) {
        if c.is_ascii_hexdigit() && c.is_ascii_lowercase() || c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        flush(&mut out, &mut run);
        out.push(c);
    }
    flush(&mut out, &mut run);
    // Token prefixes (`gantry-admin-AbC...`).
    let mut res = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("gantry-") {
        res.push_str(&rest[..i]);
        let tail = &rest[i..];
        let kind = ["gantry-admin-", "gantry-server-", "gantry-client-"].into_iter().find(|k| tail.starts_with(k));
        match kind {
            Some(k) => {
                let n = tail[k.len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).count();
                res.push_str(k);
                res.push_str("[secret]");
                rest = &tail[k.len() + n..];
            }
            None => {
                res.push_str("gantry-");
                rest = &tail["gantry-".len()..];
            }
        }
    }
    res.push_str(rest);
    res
}

fn flush(out: &mut String, run: &mut String) {
    if run.len() >= 16 && run.chars().any(|c| c.is_ascii_alphabetic()) {
        out.push_str("[hex]");
    } else {
        out.push_str(run);
    }
    run.clear();
}

/// A server at a fixed time with a few flags, segments and an experiment.
pub async fn fixture() -> TestApp {
    fixture_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await
}

/// [`fixture`] whose release controller never ticks by itself: every tick
/// is an explicit `controller::tick` at a chosen time.
pub async fn quiet_fixture() -> TestApp {
    let config = gantry_server::ServerConfig { rollout_tick: Duration::from_secs(24 * 3600), ..Default::default() };
    fixture_with(Options { manual_clock_ms: Some(T0_MS), config, ..Default::default() }).await
}

async fn fixture_with(options: Options) -> TestApp {
    let app = TestApp::spawn_with(options).await;
    let seg = admin_post(
        &app,
        "/api/v1/segments",
        &json!({"id": 1, "name": "beta testers", "description": "opted in", "constraints": [
            {"context_name": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}
        ]}),
    )
    .await;
    assert_eq!(seg.status, 201, "{}", seg.text);
    for flag in fixture_flags() {
        app.create_flag(flag).await;
    }
    app
}

fn fixture_flags() -> Vec<Value> {
    vec![
        json!({"key": "checkout", "description": "New checkout <beta> & more", "tags": ["web", "payments"],
        "variants": [{"name": "control", "weight": 500}, {"name": "treatment", "weight": 500}],
        "environments": {
            "production": {"enabled": true, "rules": [{"condition": {"type": "rollout", "percentage": 25}}]},
            "staging": {"enabled": true, "rules": [
                {"title": "beta", "condition": {"type": "all"}, "segments": [1],
                 "constraints": [{"context_name": "country", "operator": "IN", "values": ["DE", "FR"]}]},
                {"condition": {"type": "rollout", "percentage": 50, "stickiness": "userId"}}
            ]}
        }}),
        json!({"key": "dark-mode", "tags": ["web"], "stale": true,
               "environments": {"development": {"enabled": true}}}),
        json!({"key": "search-v2", "description": "Ranking model", "tags": ["search"],
               "environments": {"staging": {"enabled": true, "rules": [{"condition": {"type": "user_ids", "ids": ["alice", "bob"]}}]}}}),
    ]
}

// === sessions ===

#[tokio::test]
async fn no_session_redirects_to_sign_in() {
    let app = TestApp::spawn().await;
    let ui = Ui::new(&app);
    let r = ui.get("/ui/flags?q=x").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/ui/sign-in?next=%2Fui%2Fflags%3Fq%3Dx"));
    // The root goes to the dashboard, which asks for a sign-in.
    let r = ui.get("/").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/flags")));
    // An API token in a header is not a dashboard session.
    let r = send(ui.http.get(app.url("/ui/flags")).bearer_auth(&app.tokens.admin)).await;
    assert_eq!(r.status, 303, "{}", r.text);
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie() {
    let app = TestApp::spawn().await;
    let mut ui = Ui::new(&app);
    let r = ui.sign_in(&app.tokens.admin).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/flags")), "{}", r.text);
    let line = set_cookie_line(&r, "gantry_session");
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict") && line.contains("Path=/"), "{line}");
    assert!(!line.contains("Secure"), "plain HTTP must not get a Secure cookie: {line}");
    let id = ui.cookie.clone().expect("session cookie");
    assert_eq!(id.len(), 64, "256-bit random id");
    // Memory holds a hash of the id, not the id.
    assert_eq!(app.state.dashboard.len(), 1);
    let page = ui.get("/ui/flags").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("script-src 'self'")));
    assert!(!page.text.contains(&app.tokens.admin), "the token never appears in pages");
}

#[tokio::test]
async fn secure_cookie_behind_a_tls_proxy() {
    let app = TestApp::spawn().await;
    let ui = Ui::new(&app);
    let form = send(ui.http.get(app.url("/ui/sign-in"))).await;
    let pre = set_cookie_value(&form, "gantry_signin").expect("cookie");
    let csrf = csrf_of(&form.text).expect("csrf");
    let r = send(
        ui.http
            .post(app.url("/ui/sign-in"))
            .header("cookie", format!("gantry_signin={pre}"))
            .header("x-forwarded-proto", "https")
            .form(&[("_csrf", csrf.as_str()), ("token", app.tokens.admin.as_str())]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(set_cookie_line(&r, "gantry_session").contains("; Secure"));
}

#[tokio::test]
async fn wrong_or_non_admin_tokens_cannot_sign_in() {
    let app = TestApp::spawn().await;
    for (token, why) in [("gantry-admin-nope", "not a valid admin token"), (app.tokens.server.as_str(), "not an admin token")] {
        let mut ui = Ui::new(&app);
        let r = ui.sign_in(token).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(r.text.contains(why), "{}", r.text);
        assert!(ui.cookie.is_none());
    }
    assert!(app.state.dashboard.is_empty());
}

#[tokio::test]
async fn sign_in_form_needs_its_own_csrf_cookie() {
    let app = TestApp::spawn().await;
    let ui = Ui::new(&app);
    let r = ui.post_raw("/ui/sign-in", &[("_csrf", "abc"), ("token", &app.tokens.admin)], &[("accept", "text/html")]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("CSRF"), "{}", r.text);
    assert!(app.state.dashboard.is_empty());
}

#[tokio::test]
async fn idle_session_expires_with_the_clock() {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    let clock = app.clock.clone().expect("manual clock");
    let ui = Ui::signed_in(&app).await;
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(ui.get("/ui/flags").await.status, 200, "used within the idle limit");
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(ui.get("/ui/flags").await.status, 200, "the idle limit counts from the last request");
    clock.advance(Duration::from_secs(31 * 60));
    let r = ui.get("/ui/flags").await;
    assert_eq!(r.status, 303, "idle for 31 minutes: {}", r.text);
    assert!(r.header("location").is_some_and(|l| l.starts_with("/ui/sign-in")));
}

#[tokio::test]
async fn busy_session_still_ends_after_twelve_hours() {
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    let clock = app.clock.clone().expect("manual clock");
    let ui = Ui::signed_in(&app).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(ui.get("/ui/flags").await.status, 200);
    }
    clock.advance(Duration::from_secs(21 * 60));
    assert_eq!(ui.get("/ui/flags").await.status, 303, "absolute limit of 12 h");
}

#[tokio::test]
async fn sign_out_invalidates_the_session() {
    let app = TestApp::spawn().await;
    let ui = Ui::signed_in(&app).await;
    let r = ui.post("/ui/sign-out", &[]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/sign-in")), "{}", r.text);
    assert!(set_cookie_line(&r, "gantry_session").contains("Max-Age=0"));
    // The old cookie is dead on the server, not just in the browser.
    assert_eq!(ui.get("/ui/flags").await.status, 303);
    assert!(app.state.dashboard.is_empty());
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let app = TestApp::spawn().await;
    let (id, secret) = crate::support::api_token(&app, json!({"kind": "admin", "name": "ops"})).await;
    let mut ui = Ui::new(&app);
    assert_eq!(ui.sign_in(&secret).await.status, 303);
    assert_eq!(ui.get("/ui/flags").await.status, 200);
    let r = send(app.req(reqwest::Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&app.tokens.admin))).await;
    assert_eq!(r.status, 204);
    assert_eq!(ui.get("/ui/flags").await.status, 303);
}

// === CSRF ===

#[tokio::test]
async fn forged_posts_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ui = Ui::signed_in(&app).await;
    let before = audit_head(&app).await;
    let cookie_only = ui.post_raw("/ui/flags", &[("key", "forged")], &[]).await;
    crate::support::assert_error(&cookie_only, 403, "forbidden");
    let wrong = ui.post_raw("/ui/flags", &[("_csrf", "0000"), ("key", "forged")], &[("accept", "text/html")]).await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.text.contains("CSRF check failed") && wrong.text.contains("Nothing was changed"), "{}", wrong.text);
    let csrf = ui.csrf.clone().expect("csrf");
    let foreign = ui.post_raw("/ui/flags", &[("_csrf", &csrf), ("key", "forged")], &[("origin", "https://evil.example")]).await;
    crate::support::assert_error(&foreign, 403, "forbidden");
    // Another session's token does not fit this session.
    let other = Ui::signed_in(&app).await;
    let swapped = ui.post_raw("/ui/flags", &[("_csrf", other.csrf.as_deref().unwrap_or("")), ("key", "forged")], &[]).await;
    assert_eq!(swapped.status, 403);
    assert_eq!(admin_get(&app, "/api/v1/flags/forged").await.status, 404);
    assert_eq!(audit_head(&app).await, before, "no audit entry for refused requests");
}

#[tokio::test]
async fn a_correct_token_writes_through_the_admin_api() {
    let app = TestApp::spawn().await;
    let ui = Ui::signed_in(&app).await;
    let origin = app.base.clone();
    let r = ui
        .post_raw(
            "/ui/flags",
            &[("_csrf", ui.csrf.as_deref().unwrap_or("")), ("key", "from-ui"), ("description", "made in the dashboard"), ("tags", "a, b")],
            &[("origin", &origin)],
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/flags/from-ui")), "{}", r.text);
    let f = admin_get(&app, "/api/v1/flags/from-ui").await;
    assert_eq!(f.status, 200);
    assert_eq!(f.body["tags"], json!(["a", "b"]));
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(audit.body["items"][0]["action"], "flag.create");
    assert!(audit.body["items"][0]["actor"].as_str().is_some_and(|a| a.starts_with("token:")), "{}", audit.text);
}

#[tokio::test]
async fn invalid_input_shows_the_admin_api_error() {
    let app = TestApp::spawn().await;
    let ui = Ui::signed_in(&app).await;
    let r = ui.post("/ui/flags", &[("key", "has space")]).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("Not saved") && r.text.contains("invalid_key"), "{}", r.text);
}

// === pages ===

async fn page(ui: &Ui, path: &str) -> String {
    let r = ui.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    scrub(&r.text)
}

#[tokio::test]
async fn flags_page_snapshot() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    insta::assert_snapshot!("dashboard_flags", page(&ui, "/ui/flags").await);
    let filtered = page(&ui, "/ui/flags?env=production&state=on&tag=web").await;
    assert!(filtered.contains("/ui/flags/checkout") && !filtered.contains("/ui/flags/dark-mode"), "{filtered}");
    let stale = page(&ui, "/ui/flags?stale=stale").await;
    assert!(stale.contains("/ui/flags/dark-mode") && !stale.contains("/ui/flags/checkout"));
    let search = page(&ui, "/ui/flags?q=RANKING").await;
    assert!(search.contains("/ui/flags/search-v2") && search.contains("1 of 3 flags"));
}

#[tokio::test]
async fn user_data_is_escaped() {
    let app = TestApp::spawn().await;
    app.create_flag(json!({"key": "<img-src=x>", "description": "<script>alert(1)</script>", "tags": ["\"><b>"]})).await;
    let ui = Ui::signed_in(&app).await;
    let html = ui.get("/ui/flags").await.text;
    assert!(!html.contains("<script>alert(1)") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<img-src") && html.contains("/ui/flags/%3Cimg-src%3Dx%3E"));
    assert!(!html.contains("\"><b>"));
}

// === the flag page ===

#[tokio::test]
async fn flag_page_snapshot_with_the_debugger() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    insta::assert_snapshot!("dashboard_flag", page(&ui, "/ui/flags/checkout").await);
    let dbg = page(&ui, "/ui/flags/checkout?env=staging&user=alice&ctx=country%3DDE%0Aemail%3Dalice%40example.com").await;
    let start = dbg.find("<div id=\"debug-result\"").expect("result shown");
    let end = dbg[start..].find("</section>").map_or(dbg.len(), |e| start + e);
    insta::assert_snapshot!("dashboard_flag_debugger", &dbg[start..end]);
}

#[tokio::test]
async fn debugger_explains_why() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    // In the segment and the country: rule 1 decides.
    let hit = ui.get("/ui/flags/checkout?env=staging&user=alice&ctx=country%3DDE%0Aemail%3Da%40example.com").await.text;
    assert!(hit.contains("Rule 1 (beta): <strong>matched"), "{hit}");
    assert!(hit.contains("<dt>Reason</dt><dd><code>SPLIT</code>"), "the variants split the matched users");
    // Wrong country: rule 1 fails on the constraint, rule 2 (50 %) decides or not.
    let miss = ui.get("/ui/flags/checkout?env=staging&user=alice&ctx=country%3DUS").await.text;
    assert!(miss.contains("Rule 1 (beta): did not match"), "{miss}");
    assert!(miss.contains("country IN DE, FR: <span class=\"no\">"), "{miss}");
    // Off in development.
    let off = ui.get("/ui/flags/checkout?env=development&user=alice").await.text;
    assert!(off.contains("no configuration in development") && off.contains("DISABLED"), "{off}");
    // The answer agrees with OFREP for the same context.
    let (_, ofrep) = app.ofrep(&app.tokens.server, "checkout", json!({"targetingKey": "user-7"})).await;
    let page = ui.get("/ui/flags/checkout?env=production&user=user-7").await.text;
    let reason = ofrep["reason"].as_str().expect("reason");
    assert!(page.contains(&format!("<code>{reason}</code>")), "OFREP says {ofrep}, page: {page}");
}

#[tokio::test]
async fn toggle_in_production_asks_first() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    let head = audit_head(&app).await;
    // Staging is not protected: at once.
    let r = ui.post("/ui/flags/search-v2/environments/staging/toggle", &[("on", "false")]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/flags/search-v2#env-staging")), "{}", r.text);
    assert_eq!(admin_get(&app, "/api/v1/flags/search-v2").await.body["environments"]["staging"]["enabled"], false);
    // Production asks for a confirmation and changes nothing yet.
    let r = ui.post("/ui/flags/search-v2/environments/production/toggle", &[("on", "true")]).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("Yes, turn it on in production"), "{}", r.text);
    assert_eq!(audit_head(&app).await, head + 1);
    let r = ui.post("/ui/flags/search-v2/environments/production/toggle", &[("on", "true"), ("confirm", "yes")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let f = admin_get(&app, "/api/v1/flags/search-v2").await;
    assert_eq!(f.body["environments"]["production"]["enabled"], true);
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(audit.body["items"][0]["action"], "flag.switch_on");
    assert_eq!(audit.body["items"][0]["target"], "search-v2");
}

#[tokio::test]
async fn rules_editor_sets_a_rollout_and_keeps_the_rest() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    let version = admin_get(&app, "/api/v1/flags/checkout").await.body["version"].as_i64().expect("version").to_string();
    // Staging: keep rule 1 as is (with its constraint and segment), change rule 2 to 25 %, add a user-id rule.
    let r = ui
        .post(
            "/ui/flags/checkout/environments/staging/rules",
            &[
                ("version", &version),
                ("r0.type", "all"),
                ("r0.title", "beta"),
                ("r0.c0.name", "country"),
                ("r0.c0.op", "IN"),
                ("r0.c0.values", "DE, FR"),
                ("r0.c1.name", ""),
                ("r0.seg", "1"),
                ("r1.type", "rollout"),
                ("r1.pct", "25"),
                ("r1.stickiness", "userId"),
                ("r2.type", "user_ids"),
                ("r2.ids", "carol, dave"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let f = admin_get(&app, "/api/v1/flags/checkout").await.body;
    let rules = &f["environments"]["staging"]["rules"];
    assert_eq!(rules[0]["segments"], json!([1]));
    assert_eq!(rules[0]["constraints"], json!([{"context_name": "country", "operator": "IN", "values": ["DE", "FR"]}]));
    assert_eq!(rules[1]["condition"], json!({"type": "rollout", "percentage": 25, "stickiness": "userId"}));
    assert_eq!(rules[2]["condition"], json!({"type": "user_ids", "ids": ["carol", "dave"]}));
    assert_eq!(f["environments"]["staging"]["enabled"], true, "the switch is not the editor's business");
    // The same form again is stale now: 412, nothing overwritten.
    let stale = ui.post("/ui/flags/checkout/environments/staging/rules", &[("version", &version), ("r0.type", "all")]).await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert!(stale.text.contains("precondition_failed"));
    // A bad percentage is a validation error shown on the page.
    let v2 = f["version"].as_i64().expect("version").to_string();
    let bad =
        ui.post("/ui/flags/checkout/environments/staging/rules", &[("version", &v2), ("r0.type", "rollout"), ("r0.pct", "101")]).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
}

#[tokio::test]
async fn variants_editor_saves_weights_and_payloads() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    let version = admin_get(&app, "/api/v1/flags/checkout").await.body["version"].as_i64().expect("version").to_string();
    let r = ui
        .post(
            "/ui/flags/checkout/variants",
            &[
                ("version", &version),
                ("v0.name", "control"),
                ("v0.weight", "700"),
                ("v0.ptype", "none"),
                ("v1.name", "treatment"),
                ("v1.weight", "300"),
                ("v1.ptype", "json"),
                ("v1.pvalue", "{\"color\":\"green\"}"),
                ("v2.name", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let f = admin_get(&app, "/api/v1/flags/checkout").await.body;
    assert_eq!(
        f["variants"],
        json!([{"name": "control", "weight": 700}, {"name": "treatment", "weight": 300, "payload": {"type": "json", "value": "{\"color\":\"green\"}"}}])
    );
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    assert_eq!(audit.body["items"][0]["action"], "flag.update");
}

// === the other pages ===

/// Two experiments on `checkout`: a balanced one in staging and one whose
/// split does not match the weights (SRM) in production.
async fn with_experiments(app: &TestApp) {
    for (key, env, engine) in [("checkout-exp", "production", "frequentist"), ("checkout-bayes", "staging", "bayesian")] {
        let r = admin_post(
            app,
            "/api/v1/experiments",
            &json!({"key": key, "flag": "checkout", "environment": env, "engine": engine, "hypothesis": "Green converts better",
                    "metrics": [{"name": "converted", "event": "purchase", "kind": "conversion", "role": "primary"}]}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(admin_post(app, &format!("/api/v1/experiments/{key}/start"), &json!({})).await.status, 200);
    }
    let staging = crate::support::api_token(app, json!({"kind": "server", "environment": "staging"})).await.1;
    for (token, control, treatment) in [(app.tokens.server.clone(), 120, 60), (staging, 100, 100)] {
        let mut events = Vec::new();
        for i in 0..(control + treatment) {
            let v = if i < control { "control" } else { "treatment" };
            events.push(json!({"type": "exposure", "unit_id": format!("u{i}"), "flag": "checkout", "variant": v}));
            let converts = if v == "control" { i % 4 == 0 } else { i % 2 == 0 };
            if converts {
                events.push(json!({"type": "track", "unit_id": format!("u{i}"), "name": "purchase"}));
            }
        }
        let r = send(app.req(reqwest::Method::POST, "/api/v1/events", Some(&token)).json(&json!({ "events": events }))).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    // Events are folded into the aggregates right after they are durable: wait (bounded) for both.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for (key, want) in
        [("checkout-exp", json!([["control", 120], ["treatment", 60]])), ("checkout-bayes", json!([["control", 100], ["treatment", 100]]))]
    {
        loop {
            let r = admin_get(app, &format!("/api/v1/experiments/{key}/results")).await;
            if r.body["units"] == want {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{key}: units {} never reached {want}", r.body["units"]);
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test]
async fn other_pages_snapshots() {
    let app = fixture().await;
    with_experiments(&app).await;
    let ui = Ui::signed_in(&app).await;
    insta::assert_snapshot!("dashboard_segments", page(&ui, "/ui/segments").await);
    insta::assert_snapshot!("dashboard_environments", page(&ui, "/ui/environments").await);
    insta::assert_snapshot!("dashboard_experiments", page(&ui, "/ui/experiments").await);
    insta::assert_snapshot!("dashboard_experiment", page(&ui, "/ui/experiments/checkout-exp").await);
    insta::assert_snapshot!("dashboard_experiment_bayesian", page(&ui, "/ui/experiments/checkout-bayes").await);
    insta::assert_snapshot!("dashboard_tokens", page(&ui, "/ui/tokens").await);
    insta::assert_snapshot!("dashboard_audit", page(&ui, "/ui/audit").await);
}

#[tokio::test]
async fn experiment_page_warns_about_sample_ratio_mismatch() {
    let app = fixture().await;
    with_experiments(&app).await;
    let ui = Ui::signed_in(&app).await;
    let srm = ui.get("/ui/experiments/checkout-exp").await.text;
    assert!(srm.contains("Sample ratio mismatch"), "{srm}");
    assert!(srm.contains("<svg class=\"chart\""), "a chart per metric");
    let ok = ui.get("/ui/experiments/checkout-bayes").await.text;
    assert!(!ok.contains("Sample ratio mismatch") && ok.contains("Traffic split matches"), "{ok}");
    assert!(ok.contains("Chance to win") && ok.contains("over time</h3>") && ok.contains("class=\"trend s0\""), "{ok}");
    // Stop through the page: audited like the API.
    let r = ui.post("/ui/experiments/checkout-bayes/stop", &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(admin_get(&app, "/api/v1/audit?limit=1").await.body["items"][0]["action"], "experiment.stop");
}

#[tokio::test]
async fn token_secret_is_shown_once_and_revoke_asks_first() {
    let app = TestApp::spawn().await;
    let ui = Ui::signed_in(&app).await;
    let r = ui.post("/ui/tokens", &[("kind", "server"), ("environment", "staging"), ("name", "checkout-svc")]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let at = r.text.find("<p class=\"secret\">").expect("secret shown") + "<p class=\"secret\">".len();
    let secret: String = r.text[at..].chars().take_while(|c| *c != '<').collect();
    assert!(secret.starts_with("gantry-server-"), "{secret}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // It works, and it is never shown again.
    let cfg = send(app.req(reqwest::Method::GET, "/api/v1/config", Some(&secret))).await;
    assert_eq!(cfg.status, 200);
    assert!(!ui.get("/ui/tokens").await.text.contains(&secret));
    let id = admin_get(&app, "/api/v1/tokens")
        .await
        .body
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "checkout-svc")
        .expect("listed")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ask = ui.post(&format!("/ui/tokens/{id}/revoke"), &[]).await;
    assert_eq!(ask.status, 200);
    assert!(ask.text.contains("Yes, revoke it"));
    assert_eq!(send(app.req(reqwest::Method::GET, "/api/v1/config", Some(&secret))).await.status, 200, "not yet revoked");
    let done = ui.post(&format!("/ui/tokens/{id}/revoke"), &[("confirm", "yes")]).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(send(app.req(reqwest::Method::GET, "/api/v1/config", Some(&secret))).await.status, 401);
}

#[tokio::test]
async fn environments_and_segments_are_edited_through_the_api_rules() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    let r = ui.post("/ui/environments", &[("name", "qa"), ("description", "test team"), ("protected", "1")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let qa = admin_get(&app, "/api/v1/environments/qa").await;
    assert_eq!((qa.body["protected"].clone(), qa.body["description"].clone()), (json!(true), json!("test team")));
    let bad = ui.post("/ui/environments", &[("name", "Bad Name")]).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    // The segment in use by `checkout` cannot go; the admin API says why.
    let r = ui.post("/ui/segments/1/delete", &[("confirm", "yes")]).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("in_use") && r.text.contains("checkout"), "{}", r.text);
    // A new segment with one constraint.
    let r = ui.post("/ui/segments", &[("name", "germany"), ("s.c0.name", "country"), ("s.c0.op", "IN"), ("s.c0.values", "DE")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let seg = admin_get(&app, "/api/v1/segments/2").await;
    assert_eq!(seg.body["constraints"], json!([{"context_name": "country", "operator": "IN", "values": ["DE"]}]));
}

#[tokio::test]
async fn audit_page_shows_diffs_and_filters() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    assert_eq!(ui.post("/ui/flags/dark-mode/environments/staging/toggle", &[("on", "true")]).await.status, 303);
    let html = ui.get("/ui/audit?q=switch_on").await.text;
    assert!(html.contains("<code>flag.switch_on</code> <a href=\"/ui/flags/dark-mode\">dark-mode</a>"), "{html}");
    assert!(html.contains("<code>environments.staging.enabled</code></th><td class=\"del\">—</td><td class=\"add\">true</td>"), "{html}");
    assert!(!html.contains("flag.create"), "filtered");
}

// === maintenance and releases ===

/// Maintenance on in staging (allowlist with the fixture's segment and an
/// end) and releases of two apps recorded through the API.
async fn with_maintenance_and_releases(app: &TestApp) {
    let r = admin_put(
        app,
        "/api/v1/environments/staging/maintenance",
        &json!({"enabled": true, "message": "Database upgrade <until 14:00>", "allow_users": ["ops-1", "ops-2"],
                "allow_segments": [1], "ends_at": "2023-11-15T14:00:00Z"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (app_name, version, env, commit, notes) in [
        ("shop", "1.3.0", "production", Some("9f1c2ab"), Some("First <b>stable</b> release")),
        ("shop", "1.4.0", "staging", Some("aa11bb22"), None),
        ("shop", "1.4.0", "production", Some("aa11bb22"), Some("Faster checkout\nFixed totals")),
        ("shop", "1.10.0-rc.1", "staging", None, None),
        ("billing", "build-7", "production", None, Some("not a semantic version")),
    ] {
        let mut body = json!({"version": version, "environment": env});
        if let Some(c) = commit {
            body["commit"] = json!(c);
        }
        if let Some(n) = notes {
            body["notes"] = json!(n);
        }
        let r = admin_post(app, &format!("/api/v1/apps/{app_name}/releases"), &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

#[tokio::test]
async fn maintenance_and_releases_page_snapshots() {
    let app = fixture().await;
    with_maintenance_and_releases(&app).await;
    let ui = Ui::signed_in(&app).await;
    let maintenance = page(&ui, "/ui/maintenance").await;
    assert!(maintenance.contains("Database upgrade &lt;until 14:00&gt;") && !maintenance.contains("<until"), "escaped");
    insta::assert_snapshot!("dashboard_maintenance", maintenance);
    let releases = page(&ui, "/ui/releases?app=shop&env=production&current=1.3.0").await;
    assert!(releases.contains("First &lt;b&gt;stable&lt;/b&gt; release"), "notes are escaped");
    insta::assert_snapshot!("dashboard_releases", releases);
}

#[tokio::test]
async fn releases_page_answers_the_version_check_like_the_api() {
    let app = fixture().await;
    with_maintenance_and_releases(&app).await;
    let ui = Ui::signed_in(&app).await;
    for (env, current) in [("staging", "1.4.0"), ("staging", "1.10.0"), ("production", "1.3.0"), ("production", "1.4.0")] {
        let api = admin_get(&app, &format!("/api/v1/apps/shop/version?environment={env}&current={current}")).await;
        assert_eq!(api.status, 200, "{}", api.text);
        let html = ui.get(&format!("/ui/releases?app=shop&env={env}&current={current}")).await.text;
        let update = api.body["update_available"].as_bool().expect("bool");
        let shown = if update { "Update available:" } else { "Up to date:" };
        assert!(html.contains(shown), "{env} {current}: the API says {}, the page: {html}", api.text);
        assert!(html.contains(&format!("<strong>{}</strong>", api.body["latest"].as_str().expect("latest"))), "{html}");
    }
    let none = ui.get("/ui/releases?app=billing&env=staging&current=1").await.text;
    assert!(none.contains("No release of <strong>billing</strong> is recorded in staging"), "{none}");
    // A release recorded through the API is in the page's live fragment.
    let r = admin_post(&app, "/api/v1/apps/shop/releases", &json!({"version": "1.5.0", "environment": "production"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let frag = send(
        ui.http
            .get(app.url("/ui/releases"))
            .header("cookie", format!("gantry_session={}", ui.cookie.as_deref().unwrap_or("")))
            .header("gantry-fragment", "1"),
    )
    .await;
    assert!(!frag.text.contains("<html") && frag.text.contains("id=\"releases-history\" data-live"), "{}", frag.text);
    assert!(frag.text.contains("<tr><th scope=\"row\">1.5.0</th><td data-label=\"Environment\">production</td>"), "{}", frag.text);
}

#[tokio::test]
async fn maintenance_is_switched_on_and_off_through_the_page() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    let head = audit_head(&app).await;
    // Forged: no CSRF token, a wrong one, a foreign origin. Nothing changes.
    let forged = ui.post_raw("/ui/maintenance/staging", &[("on", "true"), ("version", "0")], &[]).await;
    crate::support::assert_error(&forged, 403, "forbidden");
    let wrong = ui.post_raw("/ui/maintenance/staging", &[("_csrf", "0000"), ("on", "true")], &[("accept", "text/html")]).await;
    assert!(wrong.status == 403 && wrong.text.contains("CSRF check failed"), "{}", wrong.text);
    let csrf = ui.csrf.clone().expect("csrf");
    let foreign = ui.post_raw("/ui/maintenance/staging", &[("_csrf", &csrf), ("on", "true")], &[("origin", "https://evil.example")]).await;
    crate::support::assert_error(&foreign, 403, "forbidden");
    assert_eq!(audit_head(&app).await, head, "refused requests write nothing");
    assert_eq!(admin_get(&app, "/api/v1/environments/staging/maintenance").await.body["enabled"], false);

    // On in staging (not protected): at once, with the form's allowlist and end (typed as UTC).
    let r = ui
        .post(
            "/ui/maintenance/staging",
            &[
                ("version", "0"),
                ("on", "true"),
                ("message", "Back at 14:00"),
                ("allow_users", "ops-1, ops-2\nops-1"),
                ("allow_segments", "1"),
                ("ends_at", "2030-01-01T12:00"),
            ],
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/maintenance#maintenance-staging")), "{}", r.text);
    let m = admin_get(&app, "/api/v1/environments/staging/maintenance").await;
    assert_eq!(
        (&m.body["enabled"], &m.body["active"], &m.body["message"], &m.body["allow_users"], &m.body["allow_segments"], &m.body["ends_at"]),
        (&json!(true), &json!(true), &json!("Back at 14:00"), &json!(["ops-1", "ops-2"]), &json!([1]), &json!("2030-01-01T12:00:00.000Z")),
        "{}",
        m.text
    );
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    let entry = &audit.body["items"][0];
    assert_eq!((&entry["action"], &entry["target"]), (&json!("maintenance.on"), &json!("staging")), "{}", audit.text);
    assert!(entry["actor"].as_str().is_some_and(|a| a.starts_with("token:")), "{}", audit.text);
    let status = send(app.req(reqwest::Method::GET, "/api/v1/status", None)).await;
    let staging = status.body["environments"].as_array().expect("envs").iter().find(|e| e["name"] == "staging").expect("staging").clone();
    assert_eq!(staging["maintenance"], true, "{}", status.text);
    let html = ui.get("/ui/maintenance").await.text;
    assert!(html.contains("aria-label=\"Turn maintenance off in staging\"") && html.contains("beta testers"), "{html}");

    // A form rendered before that change is stale now: 412, nothing overwritten.
    let stale = ui.post("/ui/maintenance/staging", &[("version", "0"), ("on", "false")]).await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    // An unknown segment is the API's validation error, shown on the page.
    let version = m.body["version"].as_i64().expect("version").to_string();
    let bad = ui.post("/ui/maintenance/staging", &[("version", &version), ("on", "true"), ("allow_segments", "99")]).await;
    assert!(bad.status == 422 && bad.text.contains("allow_segments[0]"), "{}", bad.text);

    // Off again: the allowlist and message stay for next time.
    let r = ui.post("/ui/maintenance/staging", &[("version", &version), ("on", "false")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let m = admin_get(&app, "/api/v1/environments/staging/maintenance").await;
    assert_eq!((&m.body["enabled"], &m.body["allow_users"]), (&json!(false), &json!(["ops-1", "ops-2"])), "{}", m.text);
    assert_eq!(admin_get(&app, "/api/v1/audit?limit=1").await.body["items"][0]["action"], "maintenance.off");

    // Production is protected: a confirmation first, then on.
    let before = audit_head(&app).await;
    let ask = ui.post("/ui/maintenance/production", &[("version", "0"), ("on", "true"), ("message", "Upgrade")]).await;
    assert_eq!(ask.status, 200);
    assert!(ask.text.contains("Yes, turn maintenance on in production") && ask.text.contains("value=\"Upgrade\""), "{}", ask.text);
    assert_eq!(audit_head(&app).await, before, "nothing written before confirming");
    let done = ui.post("/ui/maintenance/production", &[("version", "0"), ("on", "true"), ("message", "Upgrade"), ("confirm", "yes")]).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let m = admin_get(&app, "/api/v1/environments/production/maintenance").await;
    assert_eq!((&m.body["enabled"], &m.body["message"]), (&json!(true), &json!("Upgrade")), "{}", m.text);
    // An unknown environment is a 404 page.
    assert_eq!(ui.post("/ui/maintenance/nowhere", &[("on", "true")]).await.status, 404);
}

#[tokio::test]
async fn maintenance_confirmation_snapshot() {
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    let confirm = ui.post("/ui/maintenance/production", &[("version", "0"), ("on", "true"), ("message", "Back <soon>")]).await;
    assert_eq!(confirm.status, 200);
    insta::assert_snapshot!("dashboard_confirm_maintenance", scrub(&confirm.text));
}

// === live updates ===

#[tokio::test]
async fn live_stream_announces_changes_made_through_the_api() {
    use futures_util::StreamExt;
    let app = fixture().await;
    let ui = Ui::signed_in(&app).await;
    // Without a session: 401, so the script can send the user to sign in.
    let anon = send(Ui::new(&app).http.get(app.url("/ui/events")).header("accept", "text/event-stream")).await;
    assert_eq!(anon.status, 401);

    let r = ui
        .http
        .get(app.url("/ui/events"))
        .header("cookie", format!("gantry_session={}", ui.cookie.as_deref().unwrap_or("")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    // The hello event says the stream is subscribed; then change through the API.
    while !seen.contains("event: hello") {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.expect("stream open").expect("bytes")));
    }
    let toggled = admin_post(&app, "/api/v1/flags/dark-mode/environments/production/on", &json!({})).await;
    assert_eq!(toggled.status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: change") {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("a change event in time").expect("open").expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(r#""flags":["dark-mode"]"#), "{seen}");

    // The fragment the script fetches: the page's content only, showing the new state.
    let frag = send(
        ui.http
            .get(app.url("/ui/flags/dark-mode"))
            .header("cookie", format!("gantry_session={}", ui.cookie.as_deref().unwrap_or("")))
            .header("gantry-fragment", "1"),
    )
    .await;
    assert_eq!(frag.status, 200);
    assert!(!frag.text.contains("<html") && frag.text.contains("id=\"flag-envs\" data-live"), "{}", frag.text);
    assert!(frag.text.contains("<article class=\"env is-on\" id=\"env-production\">"), "{}", frag.text);
}

#[tokio::test]
async fn live_stream_says_signed_out_when_the_session_ends() {
    use futures_util::StreamExt;
    let app = TestApp::spawn_with(Options { manual_clock_ms: Some(T0_MS), ..Default::default() }).await;
    let ui = Ui::signed_in(&app).await;
    let r = ui
        .http
        .get(app.url("/ui/events"))
        .header("cookie", format!("gantry_session={}", ui.cookie.as_deref().unwrap_or("")))
        .send()
        .await
        .expect("stream");
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: hello") {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.expect("open").expect("bytes")));
    }
    app.clock.as_ref().expect("clock").advance(Duration::from_secs(31 * 60));
    app.create_flag(json!({"key": "after-expiry"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: signed-out") {
        match tokio::time::timeout_at(deadline, body.next()).await.expect("in time") {
            Some(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk.expect("bytes"))),
            None => break,
        }
    }
    assert!(seen.contains("event: signed-out"), "{seen}");
}

/// Every dashboard route (the table a new page extends), without a session
/// and with only an API token: reads lead to sign-in, writes change nothing.
#[tokio::test]
async fn every_dashboard_route_needs_a_session() {
    let app = fixture().await;
    let head = audit_head(&app).await;
    let gets = [
        "/ui/flags",
        "/ui/flags/checkout",
        "/ui/segments",
        "/ui/environments",
        "/ui/experiments",
        "/ui/experiments/x",
        "/ui/tokens",
        "/ui/audit",
        "/ui/maintenance",
        "/ui/releases",
        "/ui/rollouts",
        "/ui/rollouts/staging/checkout",
        "/ui/alerts",
    ];
    let posts = [
        "/ui/flags",
        "/ui/flags/checkout/environments/production/toggle",
        "/ui/flags/checkout/environments/production/rules",
        "/ui/flags/checkout/variants",
        "/ui/segments",
        "/ui/segments/1",
        "/ui/segments/1/delete",
        "/ui/environments",
        "/ui/environments/production",
        "/ui/environments/production/delete",
        "/ui/experiments/x/start",
        "/ui/experiments/x/stop",
        "/ui/tokens",
        "/ui/tokens/x/revoke",
        "/ui/maintenance/staging",
        "/ui/maintenance/production",
        "/ui/rollouts/staging/checkout/pause",
        "/ui/rollouts/staging/checkout/abort",
        "/ui/sign-out",
    ];
    let ui = Ui::new(&app);
    for path in gets {
        for rb in [ui.http.get(app.url(path)), ui.http.get(app.url(path)).bearer_auth(&app.tokens.admin)] {
            let r = send(rb).await;
            assert_eq!(r.status, 303, "GET {path}: {}", r.text);
            assert!(r.header("location").is_some_and(|l| l.starts_with("/ui/sign-in?next=")), "GET {path}");
        }
    }
    for path in posts {
        for rb in [ui.http.post(app.url(path)), ui.http.post(app.url(path)).bearer_auth(&app.tokens.admin)] {
            let r = send(rb.form(&[("on", "true"), ("confirm", "yes"), ("key", "x")])).await;
            assert_eq!(r.status, 303, "POST {path}: {}", r.text);
        }
    }
    assert_eq!(audit_head(&app).await, head, "nothing was written");
    // The sign-in page and the assets are public; unknown dashboard paths are an HTML 404.
    assert_eq!(send(ui.http.get(app.url("/ui/sign-in"))).await.status, 200);
    let css = send(ui.http.get(app.url("/ui/assets/app.css"))).await;
    assert!(css.status == 200 && css.header("content-type").is_some_and(|c| c.starts_with("text/css")));
    let js = send(ui.http.get(app.url("/ui/assets/app.js"))).await;
    assert!(js.status == 200 && js.text.contains("EventSource"));
    let missing = send(ui.http.get(app.url("/ui/no-such-page"))).await;
    assert!(missing.status == 404 && missing.text.contains("Not found"));
}

#[tokio::test]
async fn sign_in_and_confirmation_snapshots() {
    let app = fixture().await;
    let form = send(Ui::new(&app).http.get(app.url("/ui/sign-in?next=%2Fui%2Faudit"))).await;
    assert_eq!(form.status, 200);
    insta::assert_snapshot!("dashboard_sign_in", scrub(&form.text));
    let ui = Ui::signed_in(&app).await;
    let confirm = ui.post("/ui/flags/checkout/environments/production/toggle", &[("on", "false")]).await;
    assert_eq!(confirm.status, 200);
    insta::assert_snapshot!("dashboard_confirm_production", scrub(&confirm.text));
}

#[tokio::test]
async fn sign_in_follows_only_dashboard_paths() {
    let app = TestApp::spawn().await;
    let ui = Ui::new(&app);
    for (next, kept) in
        [("%2Fui%2Faudit", "/ui/audit"), ("https%3A%2F%2Fevil.example", "/ui/flags"), ("%2Fui%2Fx%0D%0ASet-Cookie%3A%20a%3Db", "/ui/flags")]
    {
        let r = send(ui.http.get(app.url(&format!("/ui/sign-in?next={next}")))).await;
        assert_eq!(r.status, 200, "{next}");
        assert!(r.text.contains(&format!("name=\"next\" value=\"{kept}\"")), "{next}: {}", r.text);
    }
}

// === rollouts ===

/// Sets the manual clock and runs one controller tick then.
async fn tick_at(app: &TestApp, ms: i64) {
    app.clock.as_ref().expect("manual clock").set(ms);
    gantry_server::release::controller::tick(&app.state, gantry_release::Timestamp::from_millis(ms)).await;
}

async fn post_events(app: &TestApp, events: Vec<Value>) {
    let r = send(app.req(reqwest::Method::POST, "/api/v1/events", Some(&app.tokens.server)).json(&json!({ "events": events }))).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

fn track(flag: &str, variant: &str, name: &str, n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"type": "track", "unit_id": format!("u{i}"), "flag": flag, "variant": variant, "name": name})).collect()
}

/// Two rollouts: `production/banner` (guarded by an error-rate guardrail fed
/// with events, evaluated twice) and `staging/checkout` (an approval step,
/// paused through the API).
async fn with_rollouts(app: &TestApp) {
    app.create_flag(json!({"key": "banner", "environments": {"production": {"enabled": true, "rules": [
        {"id": "ramp", "condition": {"type": "rollout", "percentage": 0}}
    ]}}}))
    .await;
    let r = admin_post(
        app,
        "/api/v1/rollouts",
        &json!({"target": {"flag": "banner", "environment": "production"},
                "steps": [{"kind": "ramp", "percentage": 10, "hold_ms": 600_000}, {"kind": "ramp", "percentage": 50, "hold_ms": 3_600_000},
                          {"kind": "approval"}, {"kind": "ramp", "percentage": 100}],
                "guardrails": [{"name": "errors", "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": 0.05},
                                "window_ms": 60000, "interval_ms": 10000, "min_requests": 20}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    post_events(app, [track("banner", "on", "request", 50), track("banner", "disabled", "request", 50)].concat()).await;
    tick_at(app, T0_MS + 1_000).await;
    post_events(
        app,
        [track("banner", "on", "request", 80), track("banner", "on", "error", 2), track("banner", "disabled", "request", 80)].concat(),
    )
    .await;
    tick_at(app, T0_MS + 11_000).await;
    let r = admin_post(
        app,
        "/api/v1/rollouts",
        &json!({"target": {"flag": "checkout", "environment": "staging"},
                "steps": [{"kind": "ramp", "percentage": 5, "hold_ms": 60000}, {"kind": "approval"}, {"kind": "ramp", "percentage": 100}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = admin_post(app, "/api/v1/rollouts/staging/checkout/pause", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn rollouts_page_snapshots() {
    let app = quiet_fixture().await;
    with_rollouts(&app).await;
    let ui = Ui::signed_in(&app).await;
    let list = page(&ui, "/ui/rollouts").await;
    assert!(list.contains("href=\"/ui/rollouts/production/banner\"") && list.contains("paused"), "{list}");
    insta::assert_snapshot!("dashboard_rollouts", list);
    let detail = page(&ui, "/ui/rollouts/production/banner").await;
    // The guardrail's latest verdict with its value, threshold and sample.
    assert!(detail.contains("Successful") && detail.contains("2.50 %") && detail.contains("&gt; 5.00 %"), "{detail}");
    insta::assert_snapshot!("dashboard_rollout", detail);
    insta::assert_snapshot!("dashboard_rollout_paused", page(&ui, "/ui/rollouts/staging/checkout").await);
    assert_eq!(ui.get("/ui/rollouts/staging/nothing").await.status, 404);
    // A command given through the API is in the page's live fragment.
    let r = admin_post(&app, "/api/v1/rollouts/staging/checkout/resume", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let frag = send(
        ui.http
            .get(app.url("/ui/rollouts/staging/checkout"))
            .header("cookie", format!("gantry_session={}", ui.cookie.as_deref().unwrap_or("")))
            .header("gantry-fragment", "1"),
    )
    .await;
    assert!(!frag.text.contains("<html") && frag.text.contains("id=\"rollout-summary\" data-live"), "{}", frag.text);
    assert!(frag.text.contains("<code>resumed</code>") && frag.text.contains(">Pause</button>"), "{}", frag.text);
    // The flag page links to its rollouts.
    let flag = ui.get("/ui/flags/checkout").await.text;
    assert!(
        flag.contains("<a href=\"/ui/rollouts/staging/checkout\">Rollout in staging</a> <span class=\"badge on\">progressing</span> 5%"),
        "{flag}"
    );
}

#[tokio::test]
async fn rollout_is_paused_promoted_and_aborted_through_the_page() {
    let app = quiet_fixture().await;
    let r = admin_post(
        &app,
        "/api/v1/rollouts",
        &json!({"target": {"flag": "checkout", "environment": "staging"},
                "steps": [{"kind": "ramp", "percentage": 10, "hold_ms": 60000}, {"kind": "ramp", "percentage": 50, "hold_ms": 60000},
                          {"kind": "ramp", "percentage": 100}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ui = Ui::signed_in(&app).await;
    let rollout = || async { admin_get(&app, "/api/v1/rollouts/staging/checkout").await.body };
    let html = ui.get("/ui/rollouts/staging/checkout").await.text;
    assert!(html.contains(">Pause</button>") && html.contains(">Abort</button>") && !html.contains(">Resume</button>"), "{html}");

    // Forged: no CSRF token, a wrong one, a foreign origin. Nothing changes.
    let head = audit_head(&app).await;
    let forged = ui.post_raw("/ui/rollouts/staging/checkout/pause", &[("version", "1")], &[]).await;
    crate::support::assert_error(&forged, 403, "forbidden");
    let wrong = ui.post_raw("/ui/rollouts/staging/checkout/pause", &[("_csrf", "0000")], &[("accept", "text/html")]).await;
    assert!(wrong.status == 403 && wrong.text.contains("CSRF check failed"), "{}", wrong.text);
    let csrf = ui.csrf.clone().expect("csrf");
    let foreign = ui.post_raw("/ui/rollouts/staging/checkout/pause", &[("_csrf", &csrf)], &[("origin", "https://evil.example")]).await;
    crate::support::assert_error(&foreign, 403, "forbidden");
    assert_eq!(audit_head(&app).await, head, "refused requests write nothing");
    assert_eq!(rollout().await["state"]["status"], "progressing");

    // Pause, then resume: through the API handlers, audited as the session's token.
    let version = rollout().await["version"].to_string();
    let r = ui.post("/ui/rollouts/staging/checkout/pause", &[("version", &version), ("step", "0")]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/rollouts/staging/checkout#rollout-summary")), "{}", r.text);
    assert_eq!(rollout().await["state"]["status"], "paused");
    let audit = admin_get(&app, "/api/v1/audit?limit=1").await;
    let entry = &audit.body["items"][0];
    assert_eq!((&entry["action"], &entry["target"]), (&json!("rollout.paused"), &json!("staging/checkout")), "{}", audit.text);
    assert!(entry["actor"].as_str().is_some_and(|a| a.starts_with("token:")), "{}", audit.text);
    let html = ui.get("/ui/rollouts/staging/checkout").await.text;
    assert!(html.contains(">Resume</button>") && !html.contains(">Pause</button>") && html.contains("(by a person)"), "{html}");
    // The form rendered before the pause is stale now: refused, shown on the page.
    let stale = ui.post("/ui/rollouts/staging/checkout/resume", &[("version", &version), ("step", "0")]).await;
    assert!(stale.status == 412 && stale.text.contains("Not saved"), "{}", stale.text);
    let version = rollout().await["version"].to_string();
    let r = ui.post("/ui/rollouts/staging/checkout/resume", &[("version", &version), ("step", "0")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(rollout().await["state"]["status"], "progressing");

    // Promote: to step 2 at 50 %; a second click from the same page is refused.
    let version = rollout().await["version"].to_string();
    let r = ui.post("/ui/rollouts/staging/checkout/promote", &[("step", "0")]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let now = rollout().await;
    assert_eq!((&now["state"]["step"], &now["state"]["percentage"]), (&json!(1), &json!(50)), "{now}");
    let again = ui.post("/ui/rollouts/staging/checkout/promote", &[("step", "0")]).await;
    assert!(again.status >= 400 && again.text.contains("Not saved"), "{}", again.text);
    assert_eq!(rollout().await["state"]["step"], 1, "not promoted twice");
    let _ = version;

    // Abort asks first; nothing is written until confirmed.
    let head = audit_head(&app).await;
    let ask = ui.post("/ui/rollouts/staging/checkout/abort", &[("step", "1")]).await;
    assert!(ask.status == 200 && ask.text.contains("Yes, abort"), "{}", ask.text);
    assert_eq!(audit_head(&app).await, head);
    assert_eq!(rollout().await["state"]["status"], "progressing");
    let done = ui.post("/ui/rollouts/staging/checkout/abort", &[("step", "1"), ("confirm", "yes")]).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let now = rollout().await;
    assert_eq!((&now["state"]["status"], &now["state"]["percentage"]), (&json!("aborted"), &json!(0)), "{now}");
    let audit = admin_get(&app, "/api/v1/audit?limit=5").await;
    assert!(audit.body["items"].as_array().expect("items").iter().any(|e| e["action"] == "rollout.aborted"), "{}", audit.text);
    let html = ui.get("/ui/rollouts/staging/checkout").await.text;
    assert!(html.contains(">Retry from step 1</button>") && html.contains("<code>aborted</code>"), "{html}");

    // In a protected environment every command asks first.
    app.create_flag(json!({"key": "banner", "environments": {"production": {"enabled": true, "rules": [
        {"condition": {"type": "rollout", "percentage": 0}}]}}}))
        .await;
    let r = admin_post(
        &app,
        "/api/v1/rollouts",
        &json!({"target": {"flag": "banner", "environment": "production"}, "steps": [{"kind": "ramp", "percentage": 10, "hold_ms": 60000}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ask = ui.post("/ui/rollouts/production/banner/pause", &[]).await;
    assert!(ask.status == 200 && ask.text.contains("protected environment") && ask.text.contains("Yes, pause"), "{}", ask.text);
    assert_eq!(admin_get(&app, "/api/v1/rollouts/production/banner").await.body["state"]["status"], "progressing");
    assert_eq!(ui.post("/ui/rollouts/production/banner/pause", &[("confirm", "yes")]).await.status, 303);
    assert_eq!(admin_get(&app, "/api/v1/rollouts/production/banner").await.body["state"]["status"], "paused");
    assert_eq!(ui.post("/ui/rollouts/production/banner/explode", &[]).await.status, 404);
}

// === alerts ===

/// Two notifiers (secrets in their URLs), three rules on `pay` in
/// production: one fires (and switches the flag off), one is pending, one
/// stays quiet.
async fn with_alerts(app: &TestApp) {
    app.create_flag(json!({"key": "pay", "environments": {"production": {"enabled": true}}})).await;
    for (key, kind, url) in [
        ("ops", "webhook", "https://hook-user:hook-pass@alerts.example.com:8443/hooks/T0KEN-SECRET?sig=abc"),
        ("chat", "slack", "https://hooks.slack.example/services/T000/B000/XXXXSECRET"),
    ] {
        let r = admin_post(app, "/api/v1/notifiers", &json!({"key": key, "kind": kind, "url": url})).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for (name, threshold, for_ms, keep, actions) in [
        ("pay-errors", 0.1, 0, 60_000, json!([{"type": "kill_switch", "flag": "pay", "environment": "production"}])),
        ("pay-errors-slow", 0.1, 300_000, 0, json!([])),
        ("pay-meltdown", 0.9, 0, 0, json!([{"type": "maintenance_mode"}])),
    ] {
        let rule = json!({
            "name": name, "metric": "error_rate", "condition": {"kind": "threshold", "op": ">", "value": threshold},
            "window_ms": 10000, "interval_ms": 10000, "min_requests": 10, "for_ms": for_ms, "keep_firing_for_ms": keep,
            "annotations": {"summary": format!("payment errors above {} % <{name}>", threshold * 100.0)},
            "target": {"flag": "pay", "environment": "production"}, "actions": actions
        });
        let r = admin_post(app, "/api/v1/alert-rules", &rule).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    post_events(app, track("pay", "on", "request", 50)).await;
    tick_at(app, T0_MS + 1_000).await;
    post_events(app, [track("pay", "on", "request", 50), track("pay", "on", "error", 20)].concat()).await;
    tick_at(app, T0_MS + 11_000).await;
}

#[tokio::test]
async fn alerts_page_snapshot() {
    let app = quiet_fixture().await;
    with_alerts(&app).await;
    assert_eq!(admin_get(&app, "/api/v1/alert-rules/pay-errors").await.body["state"]["status"], "firing");
    assert_eq!(admin_get(&app, "/api/v1/alert-rules/pay-errors-slow").await.body["state"]["status"], "pending");
    let ui = Ui::signed_in(&app).await;
    let html = page(&ui, "/ui/alerts").await;
    // Firing and pending are highlighted; the history has the state change and the action.
    assert!(html.contains("class=\"alert-now firing\" id=\"now-pay-errors\""), "{html}");
    assert!(html.contains("class=\"alert-now pending\" id=\"now-pay-errors-slow\""), "{html}");
    assert!(!html.contains("id=\"now-pay-meltdown\""), "{html}");
    assert!(html.contains("inactive → <strong>firing</strong>") && html.contains("<code>flag.switch_off</code> pay"), "{html}");
    assert!(html.contains("&lt;pay-errors&gt;"), "annotations are escaped");
    // Notifiers: kind and origin only, never the secret parts of the URL.
    assert!(
        html.contains("<code>https://alerts.example.com:8443</code>") && html.contains("<code>https://hooks.slack.example</code>"),
        "{html}"
    );
    for secret in ["hook-pass", "hook-user", "T0KEN-SECRET", "sig=abc", "XXXXSECRET"] {
        assert!(!html.contains(secret), "{secret} leaked: {html}");
    }
    insta::assert_snapshot!("dashboard_alerts", html);
    // With nothing configured the page says so.
    let empty = quiet_fixture().await;
    let ui = Ui::signed_in(&empty).await;
    let html = page(&ui, "/ui/alerts").await;
    assert!(html.contains("Nothing is firing or pending.") && html.contains("No alert rules."), "{html}");
}
